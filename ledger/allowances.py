"""Device allowances: a citizen delegates a capped, expiring, revocable spending right to a device key.

The owner grants an allowance from one of their accounts to a device's Ed25519 public key: at most
`cap_micros` per period of `period_ns` (periods count from `starts_at_ns`), until `expires_at_ns`.
The device signs payment requests; the canonical signed bytes are

    b"civitas/allowance-payment/v1\\n"
    || allowance_id (u128 LE) || request_id (u128 LE) || amount_micros (u64 LE)
    || payee_account_id (u128 LE) || timestamp_ns (u64 LE) || flags (u16 LE) || timeout_s (u32 LE)

`request_id` is the id of the transfer it creates, so a replayed request gives EXISTS and never
pays twice. flags bit 0 = a pending reservation (micro-tolls: reserve, then the payee posts the
actual amount, possibly less, or voids it). The transfer carries the allowance id in
`user_data_128`. The period's spend counter is updated in the same transaction as the transfer; a
payment over the cap rolls back entirely. A reservation counts against the cap of the period it was
made in, in full, until it is posted (the unposted remainder is refunded), voided (refunded) or
expires: from its expiry instant (`timestamp + timeout_s * 10^9`, when the ledger would answer
PENDING_TRANSFER_EXPIRED to a post) it no longer counts. Open reservations are kept in
`ledger_allowance_reservations`; an expired one is refunded by the next payment, post or void of
its allowance (inside that transaction, at that transaction's ledger time), and `spent` leaves it
out as of the time asked.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from .store import Ledger
from .tables import allowance_reservations, allowance_spend, allowances
from .types import (
    AMOUNT_MAX,
    BALANCE_MAX,
    ID_MAX,
    CreateTransferResult,
    CreateTransferStatus,
    LedgerRefusal,
    Transfer,
    TransferFlags,
)

__all__ = [
    "PAYMENT_DOMAIN",
    "Allowance",
    "AllowanceError",
    "Allowances",
    "PaymentRequest",
]

PAYMENT_DOMAIN = b"civitas/allowance-payment/v1\n"
FLAG_PENDING = 1
NS_PER_S = 1_000_000_000
MAX_CLOCK_SKEW_NS = 300 * 1_000_000_000
_M64 = (1 << 64) - 1
_REQ = struct.Struct("<QQQQQQQQQHI")


class AllowanceError(LedgerRefusal):
    """A payment or allowance operation is refused; `reason` is a stable slug."""


@dataclass(frozen=True, slots=True)
class Allowance:
    id: int
    account_id: int
    device_public_key: bytes
    cap_micros: int
    period_ns: int
    starts_at_ns: int
    expires_at_ns: int
    revoked_at_ns: int
    ledger: int
    code: int
    created_at_ns: int


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    allowance_id: int
    request_id: int
    amount_micros: int
    payee_account_id: int
    timestamp_ns: int
    flags: int = 0
    timeout_s: int = 0

    def to_bytes(self) -> bytes:
        for v in (self.allowance_id, self.request_id, self.payee_account_id):
            if not 0 <= v <= ID_MAX:
                raise AllowanceError("malformed-request", "id out of range")
        try:
            body = _REQ.pack(
                self.allowance_id & _M64, self.allowance_id >> 64,
                self.request_id & _M64, self.request_id >> 64,
                self.amount_micros,
                self.payee_account_id & _M64, self.payee_account_id >> 64,
                self.timestamp_ns, 0, self.flags, self.timeout_s,
            )  # fmt: skip
        except struct.error:
            raise AllowanceError("malformed-request", "field out of range") from None
        # The u64 slot before the flags is reserved (zero) so the layout stays 8-byte aligned.
        return PAYMENT_DOMAIN + body

    def sign(self, device_key: SigningKey) -> bytes:
        return device_key.sign(self.to_bytes()).signature


def _row_to_allowance(r: sa.Row[tuple[object, ...]]) -> Allowance:
    m = r._mapping
    return Allowance(
        id=int(m["id"]),
        account_id=int(m["account_id"]),
        device_public_key=bytes(m["device_public_key"]),
        cap_micros=int(m["cap_micros"]),
        period_ns=int(m["period_ns"]),
        starts_at_ns=int(m["starts_at_ns"]),
        expires_at_ns=int(m["expires_at_ns"]),
        revoked_at_ns=int(m["revoked_at_ns"]),
        ledger=int(m["ledger"]),
        code=int(m["code"]),
        created_at_ns=int(m["created_at_ns"]),
    )


class Allowances:
    """Grant, revoke and spend device allowances on a `Ledger`."""

    def __init__(
        self, ledger: Ledger, *, clock: Callable[[], int] | None = None, max_skew_ns: int = MAX_CLOCK_SKEW_NS
    ) -> None:
        self.ledger = ledger
        self.clock = clock or ledger.clock
        self.max_skew_ns = max_skew_ns

    # ------------------------------------------------------------------------------------
    # Owner side

    def grant(
        self,
        *,
        allowance_id: int,
        account_id: int,
        device_public_key: bytes,
        cap_micros: int,
        period_ns: int,
        expires_at_ns: int,
        ledger: int,
        code: int,
        starts_at_ns: int | None = None,
    ) -> Allowance:
        """Record an allowance (the caller has checked that `account_id` belongs to the owner)."""
        now = self.clock()
        starts = now if starts_at_ns is None else starts_at_ns
        if not 0 < allowance_id < ID_MAX:
            raise AllowanceError("invalid-allowance", "id must be in 1..2^128-2")
        if len(device_public_key) != 32:
            raise AllowanceError("invalid-allowance", "device key must be a 32-byte Ed25519 public key")
        try:
            VerifyKey(device_public_key)
        except Exception:
            raise AllowanceError("invalid-allowance", "device key is not an Ed25519 public key") from None
        if not 0 < cap_micros <= BALANCE_MAX or not 0 < period_ns <= BALANCE_MAX:
            raise AllowanceError("invalid-allowance", "cap and period must be positive")
        if not starts < expires_at_ns <= BALANCE_MAX:
            raise AllowanceError("invalid-allowance", "expiry must come after the start")
        if not 0 < ledger < 1 << 32 or not 0 < code < 1 << 16:
            raise AllowanceError("invalid-allowance", "ledger and code must be nonzero")
        accounts = self.ledger.lookup_accounts([account_id])
        if not accounts:
            raise AllowanceError("unknown-account", "the owner's account does not exist")
        if accounts[0].ledger != ledger:
            raise AllowanceError("invalid-allowance", "the account is on another ledger")
        a = Allowance(
            allowance_id, account_id, bytes(device_public_key), cap_micros, period_ns, starts,
            expires_at_ns, 0, ledger, code, now,
        )  # fmt: skip
        try:
            with self.ledger.engine.begin() as conn:
                conn.execute(
                    allowances.insert().values(
                        id=a.id,
                        account_id=a.account_id,
                        device_public_key=a.device_public_key,
                        cap_micros=a.cap_micros,
                        period_ns=a.period_ns,
                        starts_at_ns=a.starts_at_ns,
                        expires_at_ns=a.expires_at_ns,
                        revoked_at_ns=0,
                        ledger=a.ledger,
                        code=a.code,
                        created_at_ns=a.created_at_ns,
                    )
                )
        except sa.exc.IntegrityError:
            raise AllowanceError("allowance-exists", "an allowance with this id exists") from None
        return a

    def revoke(self, allowance_id: int) -> None:
        """Revoke now; payments verified after this point are refused. Idempotent."""
        now = self.clock()
        with self.ledger.engine.begin() as conn:
            res = conn.execute(
                allowances.update()
                .where(allowances.c.id == allowance_id, allowances.c.revoked_at_ns == 0)
                .values(revoked_at_ns=now)
            )
            if res.rowcount == 0 and self._get(conn, allowance_id) is None:
                raise AllowanceError("unknown-allowance")

    def get(self, allowance_id: int) -> Allowance | None:
        with self.ledger.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            return self._get(conn, allowance_id)

    def for_account(self, account_id: int) -> list[Allowance]:
        with self.ledger.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            rows = conn.execute(sa.select(allowances).where(allowances.c.account_id == account_id)).fetchall()
        return [_row_to_allowance(r) for r in rows]

    @staticmethod
    def _get(conn: sa.Connection, allowance_id: int) -> Allowance | None:
        row = conn.execute(sa.select(allowances).where(allowances.c.id == allowance_id)).first()
        return _row_to_allowance(row) if row else None

    def period_index(self, a: Allowance, at_ns: int) -> int:
        return (at_ns - a.starts_at_ns) // a.period_ns

    def spent(self, allowance_id: int, at_ns: int | None = None) -> int:
        """Micro-units spent in the period containing `at_ns` (default: now), counting the
        reservations of that period still open at `at_ns` and not those expired by then."""
        a = self.get(allowance_id)
        if a is None:
            raise AllowanceError("unknown-allowance")
        at = self.clock() if at_ns is None else at_ns
        idx = self.period_index(a, at)
        r = allowance_reservations.c
        with self.ledger.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            v = conn.execute(
                sa.select(allowance_spend.c.spent_micros).where(
                    allowance_spend.c.allowance_id == allowance_id, allowance_spend.c.period_index == idx
                )
            ).scalar()
            expired = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(r.amount_micros), 0)).where(
                    r.allowance_id == allowance_id,
                    r.period_index == idx,
                    r.expires_at_ns > 0,
                    r.expires_at_ns <= at,
                )
            ).scalar_one()
        return int(v or 0) - int(expired)

    # ------------------------------------------------------------------------------------
    # Device side

    def pay(self, request: PaymentRequest, signature: bytes) -> CreateTransferResult:
        """Verify a device-signed request and issue its transfer (pending when flagged)."""
        a = self.get(request.allowance_id)
        if a is None:
            raise AllowanceError("unknown-allowance")
        try:
            VerifyKey(a.device_public_key).verify(request.to_bytes(), signature)
        except (BadSignatureError, ValueError):
            raise AllowanceError("bad-signature", "the device signature does not verify") from None
        now = self.clock()
        if a.revoked_at_ns and a.revoked_at_ns <= now:
            raise AllowanceError("allowance-revoked")
        if now >= a.expires_at_ns:
            raise AllowanceError("allowance-expired")
        if now < a.starts_at_ns:
            raise AllowanceError("allowance-not-started")
        if abs(request.timestamp_ns - now) > self.max_skew_ns:
            raise AllowanceError("stale-request", "the request timestamp is too far from the ledger clock")
        if request.flags & ~FLAG_PENDING:
            raise AllowanceError("malformed-request", "unknown request flags")
        pending = bool(request.flags & FLAG_PENDING)
        if request.timeout_s and not pending:
            raise AllowanceError("malformed-request", "only reservations have a timeout")
        if not 0 < request.amount_micros <= a.cap_micros:
            raise AllowanceError("cap-exceeded", "the amount exceeds the allowance cap")
        t = Transfer(
            id=request.request_id,
            debit_account_id=a.account_id,
            credit_account_id=request.payee_account_id,
            amount=request.amount_micros,
            user_data_128=a.id,
            timeout=request.timeout_s,
            ledger=a.ledger,
            code=a.code,
            flags=TransferFlags.PENDING if pending else TransferFlags.NONE,
        )

        def charge(conn: sa.Connection, results: list[CreateTransferResult]) -> None:
            r = results[0]
            if r.status is not CreateTransferStatus.CREATED:
                return
            self._refund_expired(conn, a, r.timestamp)
            period = self.period_index(a, r.timestamp)
            self._add_spend(conn, a, period, request.amount_micros)
            if pending:
                conn.execute(
                    allowance_reservations.insert().values(
                        pending_id=request.request_id,
                        allowance_id=a.id,
                        period_index=period,
                        amount_micros=request.amount_micros,
                        expires_at_ns=r.timestamp + request.timeout_s * NS_PER_S if request.timeout_s else 0,
                    )
                )

        return self.ledger.create_transfers([t], within_transaction=charge)[0]

    # ------------------------------------------------------------------------------------
    # Payee / operator side (micro-tolls)

    def _pending_for(self, pending_id: int) -> tuple[Allowance, Transfer]:
        found = self.ledger.lookup_transfers([pending_id])
        if not found or not int(found[0].flags) & TransferFlags.PENDING:
            raise AllowanceError("unknown-reservation")
        p = found[0]
        a = self.get(p.user_data_128)
        if a is None or a.account_id != p.debit_account_id:
            raise AllowanceError("unknown-reservation", "not an allowance reservation")
        return a, p

    def post(
        self, pending_id: int, transfer_id: int, amount_micros: int = AMOUNT_MAX
    ) -> CreateTransferResult:
        """Post (part of) a reservation; the unposted remainder goes back to the allowance."""
        a, p = self._pending_for(pending_id)
        t = Transfer(
            id=transfer_id,
            pending_id=pending_id,
            amount=amount_micros,
            flags=TransferFlags.POST_PENDING_TRANSFER,
        )

        def refund(conn: sa.Connection, results: list[CreateTransferResult]) -> None:
            r = results[0]
            if r.status is CreateTransferStatus.CREATED:
                posted = p.amount if amount_micros == AMOUNT_MAX else amount_micros
                self._close_reservation(conn, a, pending_id, posted)
            elif r.status is CreateTransferStatus.PENDING_TRANSFER_EXPIRED:
                self._refund_expired(conn, a, r.timestamp)

        return self.ledger.create_transfers([t], within_transaction=refund)[0]

    def void(self, pending_id: int, transfer_id: int) -> CreateTransferResult:
        """Void a reservation; its whole amount goes back to the allowance."""
        a, _ = self._pending_for(pending_id)
        t = Transfer(id=transfer_id, pending_id=pending_id, flags=TransferFlags.VOID_PENDING_TRANSFER)

        def refund(conn: sa.Connection, results: list[CreateTransferResult]) -> None:
            r = results[0]
            if r.status is CreateTransferStatus.CREATED:
                self._close_reservation(conn, a, pending_id, 0)
            elif r.status is CreateTransferStatus.PENDING_TRANSFER_EXPIRED:
                self._refund_expired(conn, a, r.timestamp)

        return self.ledger.create_transfers([t], within_transaction=refund)[0]

    def _close_reservation(self, conn: sa.Connection, a: Allowance, pending_id: int, posted: int) -> None:
        """A reservation was posted (`posted` of it) or voided (0): refund the rest of its charge.

        Only reservations this allowance charged have a row; a pending transfer that merely carries
        the allowance id (made by the owner directly) refunds nothing."""
        r = allowance_reservations.c
        row = conn.execute(
            sa.select(r.period_index, r.amount_micros).where(r.pending_id == pending_id)
        ).first()
        if row is None:
            return
        conn.execute(allowance_reservations.delete().where(r.pending_id == pending_id))
        rest = int(row[1]) - posted
        if rest < 0:
            raise AllowanceError("invariant", "posted more than the reservation charged")
        if rest:
            self._add_spend(conn, a, int(row[0]), -rest)

    def _refund_expired(self, conn: sa.Connection, a: Allowance, at_ns: int) -> None:
        """Refund every open reservation of `a` whose expiry is at or before `at_ns` (the ledger
        time of the running transaction: from then on the ledger refuses to post them)."""
        r = allowance_reservations.c
        due = conn.execute(
            sa.select(r.pending_id, r.period_index, r.amount_micros).where(
                r.allowance_id == a.id, r.expires_at_ns > 0, r.expires_at_ns <= at_ns
            )
        ).fetchall()
        if not due:
            return
        refunds: dict[int, int] = {}
        for _pid, period, amount in due:
            refunds[int(period)] = refunds.get(int(period), 0) + int(amount)
        conn.execute(allowance_reservations.delete().where(r.pending_id.in_([int(x[0]) for x in due])))
        for period, amount in sorted(refunds.items()):
            self._add_spend(conn, a, period, -amount)

    def _add_spend(self, conn: sa.Connection, a: Allowance, period: int, delta: int) -> None:
        q = sa.select(allowance_spend.c.spent_micros).where(
            allowance_spend.c.allowance_id == a.id, allowance_spend.c.period_index == period
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        current = conn.execute(q).scalar()
        new = int(current or 0) + delta
        if new > a.cap_micros:
            raise AllowanceError("cap-exceeded", "the allowance's cap for this period is used up")
        if new < 0:
            raise AllowanceError("invariant", "allowance spend would go negative")
        if current is None:
            conn.execute(
                allowance_spend.insert().values(allowance_id=a.id, period_index=period, spent_micros=new)
            )
        else:
            conn.execute(
                allowance_spend.update()
                .where(allowance_spend.c.allowance_id == a.id, allowance_spend.c.period_index == period)
                .values(spent_micros=new)
            )
