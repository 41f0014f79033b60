"""Device allowances on both databases: signatures, caps per period, expiry, revocation, micro-tolls."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from ledger import Account, CreateTransferStatus, Ledger, PendingState, Transfer, TransferFlags
from ledger.allowances import PAYMENT_DOMAIN, AllowanceError, Allowances, PaymentRequest
from ledger.tables import allowance_reservations, allowance_spend

S = CreateTransferStatus
NS = 1_000_000_000
HOUR = 3600 * NS
DEVICE = SigningKey(b"\x42" * 32)
OWNER, PAYEE, OTHER = 1, 2, 3
T0 = 1_700_000_000 * NS


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def env(db_url: str) -> Iterator[tuple[Ledger, Allowances, Clock]]:
    clock = Clock()
    led = Ledger.open(db_url, clock=clock)
    led.create_accounts([Account(id=i, ledger=1, code=1) for i in (OWNER, PAYEE, OTHER)])
    led.create_accounts([Account(id=9, ledger=2, code=1)])
    led.create_transfers(
        [Transfer(id=1, debit_account_id=PAYEE, credit_account_id=OWNER, amount=10_000, ledger=1, code=1)]
    )
    al = Allowances(led, clock=clock)
    al.grant(
        allowance_id=77, account_id=OWNER, device_public_key=bytes(DEVICE.verify_key), cap_micros=1_000,
        period_ns=HOUR, expires_at_ns=T0 + 24 * HOUR, ledger=1, code=5,
    )  # fmt: skip
    try:
        yield led, al, clock
    finally:
        led.close()


def req(rid: int, amount: int, clock: Clock, **kw: int) -> PaymentRequest:
    return PaymentRequest(allowance_id=77, request_id=rid, amount_micros=amount, payee_account_id=PAYEE,
                          timestamp_ns=clock.now, **kw)  # fmt: skip


def owner_posted(led: Ledger) -> tuple[int, int]:
    (a,) = led.lookup_accounts([OWNER])
    return a.debits_pending, a.debits_posted


def test_request_encoding_is_fixed_and_domain_separated() -> None:
    r = PaymentRequest(allowance_id=1, request_id=2, amount_micros=3, payee_account_id=4, timestamp_ns=5)
    b = r.to_bytes()
    assert b.startswith(PAYMENT_DOMAIN) and len(b) == len(PAYMENT_DOMAIN) + 8 * 9 + 2 + 4
    with pytest.raises(AllowanceError):
        PaymentRequest(
            allowance_id=1, request_id=2, amount_micros=-3, payee_account_id=4, timestamp_ns=5
        ).to_bytes()


def test_signed_payment_within_the_cap(env: tuple[Ledger, Allowances, Clock]) -> None:
    led, al, clock = env
    r = req(100, 400, clock)
    res = al.pay(r, r.sign(DEVICE))
    assert res.status is S.CREATED
    (t,) = led.lookup_transfers([100])
    assert (t.debit_account_id, t.credit_account_id, t.amount, t.user_data_128, t.code) == (
        OWNER,
        PAYEE,
        400,
        77,
        5,
    )
    assert al.spent(77) == 400
    # Replaying the same signed request pays nothing more.
    assert al.pay(r, r.sign(DEVICE)).status is S.EXISTS
    assert al.spent(77) == 400 and owner_posted(led) == (0, 400)


def test_cap_per_period(env: tuple[Ledger, Allowances, Clock]) -> None:
    led, al, clock = env
    r1, r2, r3 = req(100, 600, clock), req(101, 400, clock), req(102, 1, clock)
    assert al.pay(r1, r1.sign(DEVICE)).status is S.CREATED
    assert al.pay(r2, r2.sign(DEVICE)).status is S.CREATED
    with pytest.raises(AllowanceError) as exc:
        al.pay(r3, r3.sign(DEVICE))
    assert exc.value.reason == "cap-exceeded"
    assert led.lookup_transfers([102]) == [] and owner_posted(led) == (0, 1_000)
    # The refused request did not burn its id: it succeeds in the next period.
    clock.now += HOUR
    r3 = req(102, 1, clock)
    assert al.pay(r3, r3.sign(DEVICE)).status is S.CREATED
    assert al.spent(77) == 1
    big = req(103, 1_001, clock)
    with pytest.raises(AllowanceError):
        al.pay(big, big.sign(DEVICE))


def test_bad_signatures_and_tampering(env: tuple[Ledger, Allowances, Clock]) -> None:
    led, al, clock = env
    r = req(100, 10, clock)
    sig = r.sign(DEVICE)
    for bad_req, bad_sig in [
        (req(100, 11, clock), sig),  # amount changed after signing
        (PaymentRequest(77, 100, 10, OTHER, clock.now), sig),  # payee changed
        (r, r.sign(SigningKey(b"\x01" * 32))),  # another key
        (r, sig[:-1] + bytes([sig[-1] ^ 1])),
        (r, b"short"),
    ]:
        with pytest.raises(AllowanceError) as exc:
            al.pay(bad_req, bad_sig)
        assert exc.value.reason == "bad-signature"
    assert led.lookup_transfers([100]) == []
    unknown = PaymentRequest(78, 100, 10, PAYEE, clock.now)
    with pytest.raises(AllowanceError, match="unknown-allowance"):
        al.pay(unknown, unknown.sign(DEVICE))


def test_expiry_revocation_and_staleness(env: tuple[Ledger, Allowances, Clock]) -> None:
    led, al, clock = env
    old = req(100, 10, clock)
    clock.now += 10 * 60 * NS
    with pytest.raises(AllowanceError, match="stale-request"):
        al.pay(old, old.sign(DEVICE))
    clock.now = T0 + 24 * HOUR
    late = req(101, 10, clock)
    with pytest.raises(AllowanceError, match="allowance-expired"):
        al.pay(late, late.sign(DEVICE))
    clock.now = T0 + HOUR
    al.revoke(77)
    al.revoke(77)  # idempotent
    r = req(102, 10, clock)
    with pytest.raises(AllowanceError, match="allowance-revoked"):
        al.pay(r, r.sign(DEVICE))
    with pytest.raises(AllowanceError):
        al.revoke(12345)
    assert led.lookup_transfers([100, 101, 102]) == []


def test_grant_validation(env: tuple[Ledger, Allowances, Clock]) -> None:
    _led, al, clock = env
    good = dict(account_id=OWNER, device_public_key=bytes(DEVICE.verify_key), cap_micros=5, period_ns=HOUR,
                expires_at_ns=clock.now + HOUR, ledger=1, code=5)  # fmt: skip
    with pytest.raises(AllowanceError, match="allowance-exists"):
        al.grant(allowance_id=77, **good)  # type: ignore[arg-type]
    for change in ({"cap_micros": 0}, {"period_ns": 0}, {"expires_at_ns": clock.now}, {"device_public_key": b"x"},
                   {"ledger": 2}, {"account_id": 999}):  # fmt: skip
        with pytest.raises(AllowanceError):
            al.grant(allowance_id=80, **{**good, **change})  # type: ignore[arg-type]
    assert al.get(80) is None
    assert [a.id for a in al.for_account(OWNER)] == [77]


def test_micro_toll_reserve_partial_post_and_void(env: tuple[Ledger, Allowances, Clock]) -> None:
    led, al, clock = env
    r = req(200, 800, clock, flags=1, timeout_s=600)
    assert al.pay(r, r.sign(DEVICE)).status is S.CREATED
    assert owner_posted(led) == (800, 0) and al.spent(77) == 800
    assert al.post(200, 201, 300).status is S.CREATED  # actual toll less than the reservation
    assert owner_posted(led) == (0, 300) and al.spent(77) == 300
    assert al.post(200, 201, 300).status is S.EXISTS and al.spent(77) == 300
    r2 = req(202, 700, clock, flags=1)
    assert al.pay(r2, r2.sign(DEVICE)).status is S.CREATED
    assert al.spent(77) == 1_000
    assert al.void(202, 203).status is S.CREATED
    assert al.spent(77) == 300 and led.pending_state(202) is PendingState.VOIDED
    assert al.void(202, 204).status is S.PENDING_TRANSFER_ALREADY_VOIDED and al.spent(77) == 300
    with pytest.raises(AllowanceError, match="unknown-reservation"):
        al.post(1, 205)
    assert led.audit().ok


def test_concurrent_devices_never_exceed_the_cap(env: tuple[Ledger, Allowances, Clock]) -> None:
    led, al, clock = env

    def attempt(i: int) -> bool:
        r = req(1_000 + i, 90, clock)
        try:
            return al.pay(r, r.sign(DEVICE)).status is S.CREATED
        except AllowanceError:
            return False

    with ThreadPoolExecutor(8) as pool:
        ok = sum(pool.map(attempt, range(20)))
    assert ok == 1_000 // 90
    assert al.spent(77) == ok * 90 == owner_posted(led)[1]


def open_reservations(led: Ledger) -> dict[int, int]:
    """pending id -> charged amount of the reservations the allowances still hold open."""
    with led.engine.connect() as conn:
        rows = conn.execute(
            sa.select(allowance_reservations.c.pending_id, allowance_reservations.c.amount_micros)
        ).fetchall()
    return {int(r[0]): int(r[1]) for r in rows}


def counter(led: Ledger, period: int = 0) -> int:
    """The stored spend counter of allowance 77 (expired reservations not yet refunded included)."""
    with led.engine.connect() as conn:
        v = conn.execute(
            sa.select(allowance_spend.c.spent_micros).where(
                allowance_spend.c.allowance_id == 77, allowance_spend.c.period_index == period
            )
        ).scalar()
    return int(v or 0)


def test_expired_reservation_stops_counting_at_its_expiry_instant(
    env: tuple[Ledger, Allowances, Clock],
) -> None:
    led, al, clock = env
    r = req(300, 1_000, clock, flags=1, timeout_s=60)
    res = al.pay(r, r.sign(DEVICE))
    assert res.status is S.CREATED
    expires = res.timestamp + 60 * NS
    assert al.spent(77, at_ns=expires - 1) == 1_000
    assert al.spent(77, at_ns=expires) == 0
    # One nanosecond before the expiry the reservation still holds the whole cap.
    clock.now = expires - 1
    r1 = req(301, 1, clock)
    with pytest.raises(AllowanceError, match="cap-exceeded"):
        al.pay(r1, r1.sign(DEVICE))
    assert led.lookup_transfers([301]) == [] and owner_posted(led) == (1_000, 0)
    assert open_reservations(led) == {300: 1_000} and counter(led) == 1_000
    # From the expiry instant on it does not: the same request id now pays, and the refund of the
    # expired reservation is made in that payment's transaction.
    clock.now = expires
    r1 = req(301, 1, clock)
    assert al.pay(r1, r1.sign(DEVICE)).status is S.CREATED
    assert led.pending_state(300) is PendingState.EXPIRED and owner_posted(led) == (0, 1)
    assert open_reservations(led) == {} and counter(led) == 1 == al.spent(77)
    # It cannot be posted or voided any more, and is never refunded twice.
    assert al.post(300, 302).status is S.PENDING_TRANSFER_EXPIRED
    assert al.void(300, 303).status is S.PENDING_TRANSFER_EXPIRED
    assert al.spent(77) == 1
    r2, r3 = req(304, 999, clock), req(305, 1, clock)
    assert al.pay(r2, r2.sign(DEVICE)).status is S.CREATED
    with pytest.raises(AllowanceError, match="cap-exceeded"):
        al.pay(r3, r3.sign(DEVICE))
    assert led.audit().ok


def test_a_post_after_expiry_refunds_the_reservation(env: tuple[Ledger, Allowances, Clock]) -> None:
    led, al, clock = env
    keep = req(400, 300, clock, flags=1)  # no timeout: counts until posted or voided
    gone = req(401, 700, clock, flags=1, timeout_s=1)
    assert al.pay(keep, keep.sign(DEVICE)).status is S.CREATED
    res = al.pay(gone, gone.sign(DEVICE))
    expires = res.timestamp + NS
    clock.now = expires - 1
    assert al.post(401, 402, 200).status is S.CREATED  # just in time: 200 of 700 posted
    assert open_reservations(led) == {400: 300} and al.spent(77) == 500
    again = req(403, 700, clock, flags=1, timeout_s=1)
    with pytest.raises(AllowanceError, match="cap-exceeded"):
        al.pay(again, again.sign(DEVICE))
    assert al.void(400, 404).status is S.CREATED and al.spent(77) == 200
    res = al.pay(again, again.sign(DEVICE))
    assert res.status is S.CREATED and al.spent(77) == 900
    clock.now = res.timestamp + NS  # the payee is too late
    assert al.spent(77) == 200 and counter(led) == 900
    assert al.post(403, 405, 10).status is S.PENDING_TRANSFER_EXPIRED
    assert open_reservations(led) == {} and counter(led) == 200 == al.spent(77)
    assert owner_posted(led) == (0, 200)
    assert led.audit().ok


def test_only_charged_reservations_are_refunded(env: tuple[Ledger, Allowances, Clock]) -> None:
    """A pending transfer the owner made directly, carrying the allowance id, was never charged:
    voiding it or letting it expire gives the allowance nothing back."""
    led, al, clock = env
    paid = req(500, 900, clock)
    assert al.pay(paid, paid.sign(DEVICE)).status is S.CREATED
    own = Transfer(id=501, debit_account_id=OWNER, credit_account_id=PAYEE, amount=50, user_data_128=77,
                   ledger=1, code=5, flags=TransferFlags.PENDING, timeout=1)  # fmt: skip
    own2 = Transfer(id=502, debit_account_id=OWNER, credit_account_id=PAYEE, amount=60, user_data_128=77,
                    ledger=1, code=5, flags=TransferFlags.PENDING)  # fmt: skip
    assert [x.status for x in led.create_transfers([own, own2])] == [S.CREATED, S.CREATED]
    assert al.void(502, 503).status is S.CREATED
    clock.now += 2 * NS
    small = req(504, 100, clock)
    assert al.pay(small, small.sign(DEVICE)).status is S.CREATED
    assert al.spent(77) == 1_000 and open_reservations(led) == {}
    assert led.pending_state(501) is PendingState.EXPIRED
