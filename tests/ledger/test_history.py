"""HISTORY accounts and `get_account_balances`: the engine's records, the store on both databases,
filters, paging and limits, two-phase transfers and expiry, the audit."""

from __future__ import annotations

import random

import pytest
import sqlalchemy as sa

from ledger import (
    AMOUNT_MAX,
    BATCH_MAX,
    Account,
    AccountBalance,
    AccountFlags,
    CreateTransferStatus,
    Ledger,
    LedgerError,
    LedgerValueError,
    PendingState,
    Transfer,
    TransferFlags,
)
from ledger import engine as eng

from .conftest import NS, FakeClock
from .memledger import MemLedger

S = CreateTransferStatus
F = TransferFlags
H = int(AccountFlags.HISTORY)


def tr(tid: int, dr: int, cr: int, amount: int, **kw: int) -> Transfer:
    kw.setdefault("ledger", 1)
    kw.setdefault("code", 1)
    return Transfer(id=tid, debit_account_id=dr, credit_account_id=cr, amount=amount, **kw)


# -- engine ---------------------------------------------------------------------------------


def _mem(*flags: int) -> MemLedger:
    m = MemLedger(now_ns=1_000 * NS)
    m.create_accounts([Account(id=k + 1, ledger=1, code=1, flags=f) for k, f in enumerate(flags)])
    return m


def test_engine_records_balances_after_each_transfer_of_a_history_account() -> None:
    m = _mem(H, 0, H)
    res = m.create_transfers([tr(1, 2, 1, 10), tr(2, 1, 3, 4), tr(3, 2, 3, 1)])
    t1, t2, t3 = (r.timestamp for r in res)
    assert [r.status for r in res] == [S.CREATED] * 3
    # (account, transfer timestamp, side, dp, dpo, cp, cpo), in timestamp order, debit side first.
    assert m.balances == [
        (1, t1, 1, 0, 0, 0, 10),
        (1, t2, 0, 0, 4, 0, 10),
        (3, t2, 1, 0, 0, 0, 4),
        (3, t3, 1, 0, 0, 0, 5),
    ]


def test_a_failed_chain_leaves_no_balance_records() -> None:
    m = _mem(H, H)
    linked = int(F.LINKED)
    res = m.create_transfers([tr(1, 1, 2, 3, flags=linked), tr(2, 1, 2, 0, code=0), tr(3, 2, 1, 1)])
    assert [r.status for r in res] == [S.LINKED_EVENT_FAILED, S.CODE_MUST_NOT_BE_ZERO, S.CREATED]
    t3 = res[2].timestamp
    assert m.balances == [(2, t3, 0, 0, 1, 0, 0), (1, t3, 1, 0, 0, 0, 1)]


def test_two_phase_records_and_expiry_records_nothing() -> None:
    m = _mem(H, 0)
    pend = int(F.PENDING)
    r = m.create_transfers([tr(1, 1, 2, 50, flags=pend, timeout=2), tr(2, 1, 2, 20, flags=pend)])
    t1, t2 = r[0].timestamp, r[1].timestamp
    t3 = m.create_transfers([Transfer(id=3, pending_id=2, amount=15, flags=F.POST_PENDING_TRANSFER)])[
        0
    ].timestamp
    m.now += 3 * NS  # pending 1 expires at the next batch: no record of its own
    t4 = m.create_transfers([tr(4, 2, 1, 1)])[0].timestamp
    assert m.balances == [
        (1, t1, 0, 50, 0, 0, 0),
        (1, t2, 0, 70, 0, 0, 0),
        (1, t3, 0, 50, 15, 0, 0),
        (1, t4, 1, 0, 15, 0, 1),  # the expiry's release shows from the next transfer on
    ]
    t5 = m.create_transfers([tr(5, 1, 2, 9, flags=pend)])[0].timestamp
    t6 = m.create_transfers([Transfer(id=6, pending_id=5, flags=F.VOID_PENDING_TRANSFER)])[0].timestamp
    assert m.balances[-2:] == [(1, t5, 0, 9, 15, 0, 1), (1, t6, 0, 0, 15, 0, 1)]


def test_plain_batches_touching_history_accounts_take_the_exact_path_with_the_same_results() -> None:
    batch = [tr(10 + k, 1 + k % 3, 1 + (k + 1) % 3, k) for k in range(12)]
    outcomes = []
    for flags in ((0, 0, 0), (H, 0, 0)):
        m = _mem(*flags)
        snap = eng.TransferSnapshot(m.accounts, m.transfers, m.pending, m.failed, (), m.last_ts)
        base = eng.batch_timestamp(m.now, m.last_ts)
        plain = eng._plain_transfers(snap, batch, base)
        exact = eng._transfers_in_order(snap, batch, base)
        got = eng.create_transfers(snap, batch, m.now)
        assert (plain is None) == bool(flags[0])
        assert got.results == exact.results and got.created == exact.created
        assert got.accounts == exact.accounts and got.balances == exact.balances
        if plain is not None:
            assert (plain.results, plain.created, plain.accounts) == (
                exact.results,
                exact.created,
                exact.accounts,
            )
        outcomes.append(exact)
    without, with_history = outcomes
    assert without.results == with_history.results and without.created == with_history.created
    assert without.balances == [] and len(with_history.balances) == 8  # account 1 in 8 of 12 transfers
    strip = {k: (*v[:10], v[10] & ~H, v[11]) for k, v in with_history.accounts.items()}
    assert strip == without.accounts


# -- store ----------------------------------------------------------------------------------


def _open(led: Ledger, *flags: int) -> None:
    res = led.create_accounts([Account(id=k + 1, ledger=1, code=1, flags=f) for k, f in enumerate(flags)])
    assert all(r.status.name == "CREATED" for r in res)


def test_store_round_trip_filters_and_paging(led: Ledger) -> None:
    _open(led, H, 0, 0)
    res = led.create_transfers([tr(k, 1 if k % 2 else 2, 2 if k % 2 else 1, k) for k in range(1, 11)])
    stamps = [r.timestamp for r in res]
    assert all(r.status is S.CREATED for r in res)
    got = led.get_account_balances(1, limit=BATCH_MAX)
    assert [b.timestamp for b in got] == stamps
    dpo = cpo = 0
    for k, b in enumerate(got, start=1):
        dpo, cpo = (dpo + k, cpo) if k % 2 else (dpo, cpo + k)
        assert b == AccountBalance(0, dpo, 0, cpo, stamps[k - 1])
    assert got[-1] == AccountBalance(*_balances(led, 1), stamps[-1])
    # Side filters, the inclusive timestamp range and reversed order.
    assert [b.timestamp for b in led.get_account_balances(1, credits=False)] == stamps[0::2]
    assert [b.timestamp for b in led.get_account_balances(1, debits=False)] == stamps[1::2]
    assert led.get_account_balances(1, debits=False, credits=False) == []
    assert [
        b.timestamp for b in led.get_account_balances(1, timestamp_min=stamps[2], timestamp_max=stamps[4])
    ] == (stamps[2:5])
    assert [b.timestamp for b in led.get_account_balances(1, timestamp_max=stamps[1])] == stamps[:2]
    assert led.get_account_balances(1, timestamp_min=stamps[5], timestamp_max=stamps[4]) == []
    assert [b.timestamp for b in led.get_account_balances(1, reversed=True, limit=3)] == stamps[::-1][:3]
    # Paging: newest first, each page continuing below the last timestamp seen.
    seen: list[int] = []
    hi = 0
    while page := led.get_account_balances(1, reversed=True, limit=4, timestamp_max=hi):
        seen += [b.timestamp for b in page]
        hi = page[-1].timestamp - 1
    assert seen == stamps[::-1]
    # Oldest first likewise.
    seen, lo = [], 0
    while page := led.get_account_balances(1, limit=3, timestamp_min=lo):
        seen += [b.timestamp for b in page]
        lo = page[-1].timestamp + 1
    assert seen == stamps
    # No HISTORY, unknown, reserved ids: nothing.
    assert led.get_account_balances(2) == [] and led.get_account_balances(99) == []
    assert led.get_account_balances(0) == [] and led.get_account_balances((1 << 128) - 1) == []
    assert led.audit().ok


def _balances(led: Ledger, aid: int) -> tuple[int, int, int, int]:
    (a,) = led.lookup_accounts([aid])
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


def test_limits_at_the_edge(led: Ledger) -> None:
    _open(led, H, 0)
    led.create_transfers([tr(k, 1, 2, 1) for k in range(1, BATCH_MAX + 1)])
    assert len(led.get_account_balances(1, limit=BATCH_MAX)) == BATCH_MAX
    assert len(led.get_account_balances(1, limit=1)) == 1
    for bad in (0, BATCH_MAX + 1, -1):
        with pytest.raises(LedgerError):
            led.get_account_balances(1, limit=bad)
    top = (1 << 63) - 1
    assert len(led.get_account_balances(1, timestamp_max=top, limit=5)) == 5
    for kw in ({"timestamp_min": top + 1}, {"timestamp_max": top + 1}, {"timestamp_min": -1}):
        with pytest.raises(LedgerValueError):
            led.get_account_balances(1, **kw)


def test_two_phase_and_expiry_on_the_store(led: Ledger, clock: FakeClock) -> None:
    _open(led, H, H)
    pend = int(F.PENDING)
    r = led.create_transfers([tr(1, 1, 2, 50, flags=pend, timeout=5), tr(2, 1, 2, 20, flags=pend)])
    post = led.create_transfers([Transfer(id=3, pending_id=2, amount=15, flags=F.POST_PENDING_TRANSFER)])
    clock.now += 6 * NS  # transfer 1 expires at the start of the next batch
    late = led.create_transfers(
        [
            Transfer(id=4, pending_id=1, amount=AMOUNT_MAX, flags=F.POST_PENDING_TRANSFER),
            tr(5, 2, 1, 3),
            tr(6, 1, 2, 4, flags=pend),
        ]
    )
    assert late[0].status is S.PENDING_TRANSFER_EXPIRED
    void = led.create_transfers([Transfer(id=7, pending_id=6, flags=F.VOID_PENDING_TRANSFER)])
    ts = [
        r[0].timestamp,
        r[1].timestamp,
        post[0].timestamp,
        late[1].timestamp,
        late[2].timestamp,
        void[0].timestamp,
    ]
    assert led.get_account_balances(1) == [
        AccountBalance(50, 0, 0, 0, ts[0]),
        AccountBalance(70, 0, 0, 0, ts[1]),
        AccountBalance(50, 15, 0, 0, ts[2]),
        AccountBalance(0, 15, 0, 3, ts[3]),  # no record for the expiry; its release shows here
        AccountBalance(4, 15, 0, 3, ts[4]),
        AccountBalance(0, 15, 0, 3, ts[5]),
    ]
    assert [b.credits_pending for b in led.get_account_balances(2)] == [50, 70, 50, 0, 4, 0]
    assert led.get_account_balances(2, reversed=True, limit=1)[0] == AccountBalance(0, 3, 0, 15, ts[5])
    assert led.audit().ok


def test_balances_are_written_in_the_batch_transaction(led: Ledger) -> None:
    _open(led, H, 0)

    def fail(stage: str) -> None:
        if stage == "before_commit":
            raise RuntimeError("crash")

    led._fault = fail
    with pytest.raises(RuntimeError):
        led.create_transfers([tr(1, 1, 2, 5)])
    led._fault = None
    assert led.get_account_balances(1) == []
    assert led.create_transfers([tr(1, 1, 2, 5)])[0].status is S.CREATED
    assert len(led.get_account_balances(1)) == 1


def test_audit_checks_the_recorded_balances(led: Ledger, clock: FakeClock) -> None:
    _open(led, H, H)
    led.create_transfers([tr(1, 1, 2, 10, flags=int(F.PENDING), timeout=1), tr(2, 2, 1, 7)])
    clock.now += 2 * NS
    led.create_transfers([tr(3, 1, 2, 2)])
    assert led.audit().ok
    with led.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ledger_account_balances SET credits_posted = credits_posted + 1")
    rep = led.audit()
    assert not rep.ok and any("recorded balances" in p for p in rep.problems)
    with led.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE ledger_account_balances SET credits_posted = credits_posted - 1")
        conn.exec_driver_sql(
            "DELETE FROM ledger_account_balances WHERE timestamp = (SELECT MAX(timestamp) FROM ledger_account_balances)"
        )
    rep = led.audit()
    assert not rep.ok and any("recorded balances" in p for p in rep.problems)


def test_audit_checks_what_expiries_released(led: Ledger, clock: FakeClock) -> None:
    _open(led, H, H)
    led.create_transfers([tr(1, 1, 2, 10, flags=int(F.PENDING), timeout=1)])
    clock.now += 2 * NS
    led.create_transfers([tr(2, 2, 1, 3)])  # records account 1 with the expired 10 released
    assert led.audit().ok
    with led.engine.begin() as conn:  # as if the expiry had not been applied before transfer 2
        conn.exec_driver_sql("UPDATE ledger_account_balances SET debits_pending = 10 WHERE side = 1")
    rep = led.audit()
    assert not rep.ok and any("released by expiries" in p for p in rep.problems)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_store_and_audit_agree_with_the_engine_on_random_two_phase_work(
    led: Ledger, clock: FakeClock, seed: int
) -> None:
    """The same random batches (pending with timeouts, posts, voids, single-phase, some failing) on
    the store and on the in-memory engine: identical records, and the audit's replay accepts them."""
    rng = random.Random(seed)
    flags = (H, H | int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS), 0, H)
    _open(led, *flags)
    mem = MemLedger(now_ns=clock.now)
    mem.create_accounts([Account(id=k + 1, ledger=1, code=1, flags=f) for k, f in enumerate(flags)])
    pend, post, void = int(F.PENDING), F.POST_PENDING_TRANSFER, F.VOID_PENDING_TRANSFER
    next_id, pendings = 1, []
    for _ in range(25):
        batch = []
        for _ in range(rng.randint(1, 6)):
            kind = rng.choice(["single", "single", "pending", "pending", "post", "void"])
            if kind in ("post", "void") and pendings:
                pid = rng.choice(pendings)
                amount = rng.choice([0, AMOUNT_MAX, 1]) if kind == "post" else 0
                batch.append(
                    Transfer(
                        id=next_id, pending_id=pid, amount=amount, flags=post if kind == "post" else void
                    )
                )
            else:
                dr, cr = rng.sample(range(1, 5), 2)
                kw = {"flags": pend, "timeout": rng.choice([0, 1, 2])} if kind == "pending" else {}
                batch.append(tr(next_id, dr, cr, rng.randint(0, 20), **kw))
                if kind == "pending":
                    pendings.append(next_id)
            next_id += 1
        got = [(r.timestamp, r.status) for r in led.create_transfers(batch)]
        want = [(r.timestamp, r.status) for r in mem.create_transfers(batch)]
        assert got == want
        step = rng.choice([0, 0, NS // 2, NS, 2 * NS])
        clock.now += step
        mem.now += step
    for aid in (1, 2, 4):
        recorded = [
            (aid, b.timestamp, *astuple_balance(b)) for b in led.get_account_balances(aid, limit=BATCH_MAX)
        ]
        assert recorded == [(r[0], r[1], *r[3:]) for r in mem.balances if r[0] == aid]
    assert led.get_account_balances(3) == []
    assert any(led.pending_state(p) is PendingState.EXPIRED for p in pendings)  # expiries were exercised
    assert led.audit().ok


def astuple_balance(b: AccountBalance) -> tuple[int, int, int, int]:
    return b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted


def test_the_table_has_one_row_per_transfer_and_history_account(led: Ledger) -> None:
    _open(led, H, 0, H)
    led.create_transfers([tr(1, 1, 2, 1), tr(2, 2, 3, 1), tr(3, 1, 3, 1), tr(4, 3, 2, 0)])
    with led.engine.connect() as conn:
        n = conn.execute(sa.text("SELECT COUNT(*) FROM ledger_account_balances")).scalar_one()
    assert n == 5  # transfer 1: account 1; 2: 3; 3: 1 and 3; 4: 3


def test_the_example_of_the_spec() -> None:
    """specs/ledger.md, Historical balances: receive 10, reserve 4 (expires), pay 2."""
    m = MemLedger(now_ns=1_000 * NS)
    m.create_accounts([Account(id=3, ledger=1, code=1, flags=H), Account(id=9, ledger=1, code=1)])
    m.create_transfers([tr(1, 9, 3, 10), tr(2, 3, 9, 4, flags=int(F.PENDING), timeout=1)])
    m.now += 2 * NS
    m.create_transfers([tr(3, 3, 9, 2)])
    assert [r[3:] for r in m.balances] == [(0, 0, 0, 10), (4, 0, 0, 10), (0, 2, 0, 10)]
