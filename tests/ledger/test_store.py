"""The SQL store on both databases: persistence, atomic batches, concurrency, limits, proofs, audit."""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey
from sqlalchemy.pool import NullPool

from ledger import (
    AMOUNT_MAX,
    BATCH_MAX,
    Account,
    AccountFlags,
    BatchTooLargeError,
    CreateAccountStatus,
    CreateTransferStatus,
    Ledger,
    LedgerError,
    LedgerValueError,
    PendingState,
    Transfer,
    TransferFlags,
    merkle,
    note,
)
from ledger.audit import AuditReport
from ledger.codec import TRANSFER_SIZE, encode_transfer
from ledger.witness import verify_checkpoint

from .conftest import KEY, NS, FakeClock

S = CreateTransferStatus
F = TransferFlags


def accounts(led: Ledger, *ids: int, flags: int = 0, ledger: int = 1) -> None:
    res = led.create_accounts([Account(id=i, ledger=ledger, code=1, flags=flags) for i in ids])
    assert all(r.status is CreateAccountStatus.CREATED for r in res)


def tr(tid: int, dr: int, cr: int, amount: int, **kw: int) -> Transfer:
    kw.setdefault("ledger", 1)
    kw.setdefault("code", 1)
    return Transfer(id=tid, debit_account_id=dr, credit_account_id=cr, amount=amount, **kw)


def balances(led: Ledger, aid: int) -> tuple[int, int, int, int]:
    (a,) = led.lookup_accounts([aid])
    return a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted


def test_round_trip_of_every_field(led: Ledger) -> None:
    big = (1 << 128) - 2
    led.create_accounts(
        [
            Account(
                id=big,
                ledger=(1 << 32) - 1,
                code=65535,
                user_data_128=big,
                user_data_64=(1 << 64) - 1,
                user_data_32=7,
            )
        ]
    )
    accounts(led, 5, ledger=(1 << 32) - 1)
    t = Transfer(
        id=big, debit_account_id=big, credit_account_id=5, amount=9, user_data_128=big - 1,
        user_data_64=(1 << 64) - 1, user_data_32=(1 << 32) - 1, ledger=(1 << 32) - 1, code=65535,
    )  # fmt: skip
    assert led.create_transfers([t])[0].status is S.CREATED
    (got,) = led.lookup_transfers([big])
    assert (got.user_data_128, got.user_data_64, got.user_data_32, got.ledger, got.code) == (
        big - 1, (1 << 64) - 1, (1 << 32) - 1, (1 << 32) - 1, 65535,
    )  # fmt: skip
    (a,) = led.lookup_accounts([big])
    assert (a.user_data_64, a.user_data_128, a.debits_posted, a.flags) == (
        (1 << 64) - 1,
        big,
        9,
        AccountFlags.NONE,
    )
    assert led.lookup_accounts([12345, big, 5])[0].id == big
    assert led.lookup_transfers([1, 2]) == []


def test_persistence_across_reopen(db_url: str, clock: FakeClock) -> None:
    with Ledger.open(db_url, signing_key=KEY, origin="test.example/ledger", clock=clock) as led:
        accounts(led, 1, 2)
        assert (
            led.create_transfers([tr(10, 1, 2, 5), tr(11, 1, 99, 5)])[1].status is S.CREDIT_ACCOUNT_NOT_FOUND
        )
        led.create_transfers([tr(12, 1, 2, 7, flags=int(F.PENDING))])
        cp = led.checkpoint()
    with Ledger.open(db_url, signing_key=KEY, origin="test.example/ledger", clock=clock) as led:
        assert balances(led, 1) == (7, 5, 0, 0)
        assert led.create_transfers([tr(10, 1, 2, 5)])[0].status is S.EXISTS
        assert led.create_transfers([tr(11, 1, 2, 5)])[0].status is S.ID_ALREADY_FAILED
        assert led.pending_state(12) is PendingState.PENDING
        assert led.checkpoint() == cp
        assert led.tree_size == 2
        assert led.audit().ok


def test_get_account_transfers_pages_by_timestamp(led: Ledger) -> None:
    accounts(led, 1, 2, 3)
    led.create_transfers([tr(100 + i, 1 + i % 2, 3, 1) for i in range(10)])
    led.create_transfers([tr(200, 3, 1, 4)])
    page1 = led.get_account_transfers(1, limit=3)
    assert [t.id for t in page1] == [100, 102, 104]
    page2 = led.get_account_transfers(1, limit=3, after=page1[-1].timestamp)
    assert [t.id for t in page2] == [106, 108, 200]
    assert [t.id for t in led.get_account_transfers(1, limit=2, reverse=True)] == [200, 108]
    assert [t.id for t in led.get_account_transfers(1, credits=False)] == [100, 102, 104, 106, 108]
    assert [t.id for t in led.get_account_transfers(1, debits=False)] == [200]
    with pytest.raises(LedgerError):
        led.get_account_transfers(1, limit=0)


def _history_workload(led: Ledger, clock: FakeClock) -> list[Transfer]:
    """Twelve batches over five accounts: plain, pending, posted, voided and failing transfers."""
    accounts(led, 1, 2, 3, 4, 5)
    rng = random.Random(5)
    next_id = 1000
    for k in range(12):
        batch = []
        for _ in range(rng.randint(1, 9)):
            dr, cr = rng.sample([1, 2, 3, 4, 5, 99], 2)
            batch.append(tr(next_id, dr, cr, rng.randint(0, 9), flags=rng.choice([0, 0, 0, int(F.PENDING)])))
            next_id += 1
        pending = [t.id for t in batch if t.flags and t.debit_account_id != 99 and t.credit_account_id != 99]
        if pending and k % 3 == 0:
            resolve = int(F.POST_PENDING_TRANSFER) if k % 2 else int(F.VOID_PENDING_TRANSFER)
            batch.append(Transfer(id=next_id + 500, pending_id=pending[0], flags=resolve, amount=0))
        led.create_transfers(batch)
        clock.now += NS
    everything = led.lookup_transfers(list(range(1000, next_id + 600)))
    assert len(everything) > 30
    return sorted(everything, key=lambda t: t.timestamp)


@pytest.mark.parametrize("rows_per_walk", [2, BATCH_MAX])
def test_get_account_transfers_agrees_with_a_scan_of_every_transfer(
    led: Ledger, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, rows_per_walk: int
) -> None:
    import ledger.store

    monkeypatch.setattr(ledger.store, "_HISTORY_ROWS", rows_per_walk)
    everything = _history_workload(led, clock)
    stamps = [t.timestamp for t in everything]
    cuts = [0, stamps[3], stamps[len(stamps) // 2], stamps[-1], stamps[-1] + 1]
    for aid in (1, 2, 3, 4, 5, 6):
        for after in cuts:
            for before in [0, *cuts[1:]]:
                for debits, credits in ((True, True), (True, False), (False, True)):
                    want = [
                        t for t in everything
                        if after < t.timestamp and (before == 0 or t.timestamp < before)
                        and ((debits and t.debit_account_id == aid) or (credits and t.credit_account_id == aid))
                    ]  # fmt: skip
                    for limit, reverse in ((1, False), (3, True), (BATCH_MAX, False), (BATCH_MAX, True)):
                        got = led.get_account_transfers(
                            aid, limit=limit, after=after, before=before, debits=debits, credits=credits,
                            reverse=reverse,
                        )  # fmt: skip
                        expected = (want[::-1] if reverse else want)[:limit]
                        assert got == expected, (aid, after, before, debits, credits, limit, reverse)
    assert led.get_account_transfers(1, debits=False, credits=False) == []
    assert led.audit().ok


def test_ids_below_the_largest_stored_id_are_still_checked(led: Ledger) -> None:
    accounts(led, 1, 2)
    assert led.create_transfers([tr(100, 1, 2, 1), tr(101, 1, 99, 1)])[1].status is S.CREDIT_ACCOUNT_NOT_FOUND
    res = led.create_transfers([tr(5, 1, 2, 1), tr(100, 1, 2, 1), tr(101, 1, 2, 1), tr(100, 1, 2, 2)])
    assert [r.status for r in res] == [
        S.CREATED,
        S.EXISTS,
        S.ID_ALREADY_FAILED,
        S.EXISTS_WITH_DIFFERENT_AMOUNT,
    ]
    assert led.create_transfers([tr(102, 1, 2, 1)])[0].status is S.CREATED
    assert [t.id for t in led.get_account_transfers(1)] == [100, 5, 102]


def test_leaf_index_of_a_transfer(led: Ledger) -> None:
    accounts(led, 1, 2)
    led.create_transfers([tr(i, 1, 2, 1) for i in range(1, 40)])
    led.create_transfers([tr(50, 1, 99, 1), tr(51, 2, 1, 1)])
    for i, t in enumerate(led.get_account_transfers(1, limit=100)):
        assert led.leaf_index(t.timestamp) == i
        assert led.leaf_hash(i) == merkle.leaf_hash(encode_transfer(t.as_row()))
    assert led.leaf_index(1) is None


def test_audit_checks_the_id_rows_blocks_and_history(led: Ledger, clock: FakeClock) -> None:
    _history_workload(led, clock)
    assert led.audit().ok
    d = led._d
    tampering = [
        (f"DELETE FROM ledger_transfers WHERE id = {d.ph}", (d.id_in(1003),), "id row"),
        ("UPDATE ledger_transfer_blocks SET first_leaf_index = first_leaf_index + 1", (), "leaf index"),
        (f"UPDATE ledger_account_history SET entries = {d.ph}", (b"\x00\x00",), "history entries"),
        ("UPDATE ledger_account_history SET previous_seq = 7", (), "chained"),
        ("UPDATE ledger_balances SET history_head = history_head + 1", (), "head of its history"),
    ]
    for sql, params, problem in tampering:
        with led.engine.connect() as conn:
            tx = conn.begin()
            conn.exec_driver_sql(sql, params)
            rep = ledger_audit(led, conn)
            tx.rollback()
        assert not rep.ok and any(problem in p for p in rep.problems), (sql, rep.problems)
    assert led.audit().ok


def ledger_audit(led: Ledger, conn: sa.Connection) -> AuditReport:
    """The audit's store cross-check, run inside an open (tampering) transaction."""
    rep = AuditReport()
    for problem in led._storage_problems(conn):
        rep.problem(problem)
    return rep


@pytest.mark.parametrize(
    "stage", ["engine_applied", "transfers_inserted", "leaves_inserted", "accounts_updated", "before_commit"]
)
def test_a_batch_is_all_or_nothing(led: Ledger, stage: str) -> None:
    accounts(led, 1, 2)
    led.create_transfers([tr(1, 1, 2, 3, flags=int(F.PENDING))])
    before = (balances(led, 1), balances(led, 2), led.tree_size, led.checkpoint())

    def boom(name: str) -> None:
        if name == stage:
            raise RuntimeError("injected failure")

    led._fault = boom
    batch = [
        tr(10, 1, 2, 5),
        tr(11, 2, 1, 1),
        Transfer(id=12, pending_id=1, flags=F.VOID_PENDING_TRANSFER),
        tr(13, 1, 77, 1),
    ]
    with pytest.raises(RuntimeError):
        led.create_transfers(batch)
    led._fault = None
    assert (balances(led, 1), balances(led, 2), led.tree_size, led.checkpoint()) == before
    assert led.lookup_transfers([10, 11, 12]) == []
    assert led.pending_state(1) is PendingState.PENDING
    # Nothing of the failed batch survived, not even the burnt id of event 13.
    assert [r.status for r in led.create_transfers(batch)] == [
        S.CREATED,
        S.CREATED,
        S.CREATED,
        S.CREDIT_ACCOUNT_NOT_FOUND,
    ]
    assert balances(led, 1) == (0, 5, 0, 1)
    assert led.audit().ok


def test_a_failed_commit_leaves_nothing_and_drops_the_cache(
    led: Ledger, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the commit runs on a worker thread while the batch's bookkeeping goes on: if it
    fails, the batch raises, nothing of it is kept, and the account cache updated meanwhile is
    not trusted afterwards."""
    if not db_url.startswith("sqlite"):
        pytest.skip("the commit runs in the caller's thread on PostgreSQL")
    accounts(led, 1, 2)
    led.create_transfers([tr(1, 1, 2, 5)])

    def failing_commit(conn: sa.Connection) -> Future[None]:
        f: Future[None] = Future()
        f.set_exception(sqlite3.OperationalError("disk I/O error"))
        return f

    monkeypatch.setattr(led, "_commit_in_background", failing_commit)
    with pytest.raises(sqlite3.OperationalError):
        led.create_transfers([tr(2, 1, 2, 7)])
    monkeypatch.undo()
    assert led.lookup_transfers([2]) == [] and balances(led, 1) == (0, 5, 0, 0)
    assert led.create_transfers([tr(3, 1, 2, 1)])[0].status is S.CREATED
    assert balances(led, 1) == (0, 6, 0, 0) and balances(led, 2) == (0, 0, 0, 6)
    assert [t.id for t in led.get_account_transfers(2)] == [1, 3]
    assert led.audit().ok


def test_a_connection_bound_to_its_thread_commits_in_the_caller(tmp_path: Path) -> None:
    engine = sa.create_engine(
        f"sqlite:///{tmp_path / 'bound.db'}", connect_args={"check_same_thread": True}, poolclass=NullPool
    )
    with Ledger(engine, signing_key=KEY) as led:
        accounts(led, 1, 2)
        assert led.create_transfers([tr(1, 1, 2, 5)])[0].status is S.CREATED
        assert balances(led, 1) == (0, 5, 0, 0) and led.audit().ok
    engine.dispose()


def test_batch_size_limit_at_the_edge(led: Ledger) -> None:
    accounts(led, 1, 2)
    ok = led.create_transfers([tr(1 + i, 1, 2, 1) for i in range(BATCH_MAX)])
    assert len(ok) == BATCH_MAX and all(r.status is S.CREATED for r in ok)
    assert len({r.timestamp for r in ok}) == BATCH_MAX
    with pytest.raises(BatchTooLargeError, match="8190"):
        led.create_transfers([tr(100_000 + i, 1, 2, 1) for i in range(BATCH_MAX + 1)])
    with pytest.raises(BatchTooLargeError):
        led.create_accounts([Account(id=100 + i, ledger=1, code=1) for i in range(BATCH_MAX + 1)])
    assert led.lookup_transfers([100_000, 100_000 + BATCH_MAX]) == []
    assert led.lookup_accounts([100]) == []
    assert balances(led, 1) == (0, BATCH_MAX, 0, 0)
    assert led.tree_size == BATCH_MAX


def test_malformed_batch_writes_nothing(led: Ledger) -> None:
    accounts(led, 1, 2)
    with pytest.raises(LedgerValueError):
        led.create_transfers([tr(1, 1, 2, 1), tr(2, 1, 2, -5)])
    assert led.lookup_transfers([1]) == []


def test_two_phase_and_expiry_on_the_store(led: Ledger, clock: FakeClock) -> None:
    accounts(led, 1, 2)
    led.create_transfers(
        [tr(1, 1, 2, 50, flags=int(F.PENDING), timeout=5), tr(2, 1, 2, 20, flags=int(F.PENDING))]
    )
    assert balances(led, 1) == (70, 0, 0, 0)
    assert (
        led.create_transfers([Transfer(id=3, pending_id=2, amount=15, flags=F.POST_PENDING_TRANSFER)])[
            0
        ].status
        is S.CREATED
    )
    assert balances(led, 1) == (50, 15, 0, 0)
    clock.now += 6 * NS
    res = led.create_transfers(
        [Transfer(id=4, pending_id=1, amount=AMOUNT_MAX, flags=F.POST_PENDING_TRANSFER)]
    )
    assert res[0].status is S.PENDING_TRANSFER_EXPIRED
    assert balances(led, 1) == (0, 15, 0, 0)
    assert led.pending_state(1) is PendingState.EXPIRED
    assert led.pending_state(2) is PendingState.POSTED
    assert led.pending_state(3) is None
    assert led.audit().ok


def test_expiry_beside_new_transfers_keeps_every_history(led: Ledger, clock: FakeClock) -> None:
    """A batch that creates transfers between some accounts while an expiry releases others: the
    released accounts' balances change without a history row of that batch."""
    accounts(led, 1, 2, 3, 4)
    led.create_transfers([tr(1, 1, 2, 50, flags=int(F.PENDING), timeout=1), tr(2, 3, 4, 5)])
    clock.now += 2 * NS
    assert led.create_transfers([tr(3, 3, 4, 7), tr(4, 4, 3, 1)])[0].status is S.CREATED
    assert balances(led, 1) == (0, 0, 0, 0) and balances(led, 2) == (0, 0, 0, 0)
    assert balances(led, 3) == (0, 12, 0, 1) and balances(led, 4) == (0, 1, 0, 12)
    assert [t.id for t in led.get_account_transfers(1)] == [1]
    assert [t.id for t in led.get_account_transfers(2, reverse=True)] == [1]
    assert [t.id for t in led.get_account_transfers(3)] == [2, 3, 4]
    assert [t.id for t in led.get_account_transfers(4, debits=False)] == [2, 3]
    assert led.create_transfers([tr(5, 1, 2, 2)])[0].status is S.CREATED
    assert [t.id for t in led.get_account_transfers(2, reverse=True)] == [5, 1]
    assert led.audit().ok


def _spend_concurrently(
    make: Callable[[], Ledger], n_ledgers: int, threads: int, attempts: int
) -> tuple[int, Ledger]:
    ledgers = [make() for _ in range(n_ledgers)]
    first = ledgers[0]
    accounts(first, 1)
    accounts(first, 2, flags=int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS))
    accounts(first, 3)
    assert first.create_transfers([tr(1, 1, 2, 100)])[0].status is S.CREATED
    created = 0
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def worker(w: int) -> None:
        nonlocal created
        led = ledgers[w % n_ledgers]
        barrier.wait()
        for k in range(attempts):
            tid = 1_000 + w * 1_000 + k
            r = led.create_transfers([tr(tid, 2, 3, 7)])[0]
            assert r.status in (S.CREATED, S.EXCEEDS_CREDITS)
            if r.status is S.CREATED:
                with lock:
                    created += 1

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    for extra in ledgers[1:]:
        extra.close()
    return created, first


def test_concurrent_spenders_never_overdraw(db_url: str) -> None:
    def make() -> Ledger:
        return Ledger.open(db_url, signing_key=KEY, origin="test.example/ledger")

    created, led = _spend_concurrently(make, n_ledgers=3, threads=6, attempts=6)
    try:
        assert created == 100 // 7
        dp, dpo, _cp, cpo = balances(led, 2)
        assert dpo == created * 7 <= cpo == 100 and dp == 0
        assert led.audit().ok
    finally:
        led.close()


def test_group_committer_coalesces_concurrent_requests(led: Ledger) -> None:
    accounts(led, 1, 2)
    with ThreadPoolExecutor(16) as pool:
        futures = list(pool.map(lambda i: led.submit_transfer(tr(10 + i, 1, 2, 1)), range(200)))
        results = [f.result(timeout=30) for f in futures]
    assert all(r.status is S.CREATED for r in results)
    assert len({r.timestamp for r in results}) == 200
    assert balances(led, 1) == (0, 200, 0, 0)
    committer = led._committer
    assert committer is not None and 1 <= committer.batches <= 200
    with pytest.raises(LedgerValueError):
        led.submit_transfer(tr(5000, 1, 2, 1, flags=int(F.LINKED)))
    with pytest.raises(LedgerValueError):
        led.submit_transfer(tr(5001, 1, 2, -1))


def test_group_committer_from_asyncio(led: Ledger) -> None:
    import asyncio

    from ledger import GroupCommitter

    accounts(led, 1, 2)
    gc = GroupCommitter(led, max_wait_s=0.005)

    async def main() -> list[S]:
        rs = await asyncio.gather(*(gc.submit_async(tr(100 + i, 1, 2, 2)) for i in range(50)))
        return [r.status for r in rs]

    try:
        assert asyncio.run(main()) == [S.CREATED] * 50
        assert gc.batches < 50  # coalesced
    finally:
        gc.close()


def test_merkle_log_proofs_and_checkpoints(led: Ledger) -> None:
    accounts(led, 1, 2)
    sizes = []
    tid = 1
    for n in (1, 2, 5, 250, 300, 3):  # crosses the 256-leaf node-cache level
        led.create_transfers([tr(tid + i, 1, 2, 1) for i in range(n)])
        tid += n
        sizes.append(led.tree_size)
    size = led.tree_size
    assert size == 561
    vkey = led.verifier_key
    cp = note.parse_checkpoint(note.verify_note(led.checkpoint(), [note.NoteVerifier.parse(vkey)]).text)
    assert (cp.origin, cp.size) == ("test.example/ledger", size)
    assert cp.root_hash == led.root()
    # The tree the ledger keeps equals an in-memory tree of its leaves.
    leaves = [led.leaf_hash(i) for i in range(size)]
    mem = merkle.MemoryTree(leaves)
    assert mem.root() == cp.root_hash
    for i in (0, 1, 255, 256, 300, 511, 512, 560):
        proof = led.inclusion_proof(i, size)
        assert proof == mem.inclusion_proof(i, size)
        assert merkle.verify_inclusion(leaves[i], i, size, proof, cp.root_hash)
        assert not merkle.verify_inclusion(leaves[i], (i + 1) % size, size, proof, cp.root_hash)
    for old in sizes[:-1]:
        stored = led.stored_checkpoint(old)
        assert stored is not None
        old_cp = note.parse_checkpoint(note.parse_note(stored).text)
        assert old_cp.root_hash == led.root(old) == mem.root(old)
        proof = led.consistency_proof(old, size)
        assert merkle.verify_consistency(old, size, proof, old_cp.root_hash, cp.root_hash)
    # The leaf is the canonical encoding of the stored transfer.
    from ledger.codec import encode_transfer

    (t,) = led.lookup_transfers([300])
    assert led.leaf_hash(299) == merkle.leaf_hash(encode_transfer(t.as_row()))
    with pytest.raises(merkle.ProofError):
        led.inclusion_proof(0, size + 1)
    for beyond in (size, size + 10_000, -1):
        with pytest.raises(merkle.ProofError):
            led.leaf_hash(beyond)
    assert verify_checkpoint(led.checkpoint(), vkey, [], 0).size == size


def test_failed_transfers_are_not_leaves(led: Ledger) -> None:
    accounts(led, 1, 2)
    led.create_transfers([tr(1, 1, 99, 1), tr(2, 1, 2, 1, code=0)])
    assert led.tree_size == 0
    assert note.parse_checkpoint(note.parse_note(led.checkpoint()).text).root_hash == merkle.EMPTY_ROOT


def test_audit_detects_tampering(led: Ledger, db_url: str) -> None:
    accounts(led, 1, 2)
    led.create_transfers([tr(i, 1, 2, 10) for i in range(1, 6)])
    assert led.audit().ok
    # Transfer 3's amount (bytes 48.. of its 128-byte encoding, the third of the batch's block).
    with led.engine.connect() as conn:
        block = bytes(conn.exec_driver_sql("SELECT transfers FROM ledger_transfer_blocks").scalar_one())
    assert len(block) == 5 * TRANSFER_SIZE and block[2 * 128 + 48] == 10
    tampered = bytearray(block)
    tampered[2 * 128 + 48] = 11
    set_block = sa.text("UPDATE ledger_transfer_blocks SET transfers = :b")
    with led.engine.begin() as conn:
        conn.execute(set_block, {"b": bytes(tampered)})
    rep = led.audit()
    assert not rep.ok
    assert any("balances" in p for p in rep.problems) and any("leaf 2" in p for p in rep.problems)
    with led.engine.begin() as conn:
        conn.execute(set_block, {"b": block})
        conn.exec_driver_sql("UPDATE ledger_leaves SET leaf_hashes = leaf_hashes WHERE first_leaf_index = 0")
    assert led.audit().ok
    # The leaf hashes of a batch are one row: a changed or truncated hash is found.
    with led.engine.connect() as conn:
        blob = bytes(conn.exec_driver_sql("SELECT leaf_hashes FROM ledger_leaves").scalar_one())
    assert len(blob) == 5 * 32 and blob[64:96] == led.leaf_hash(2)
    for bad in (blob[:64] + bytes(32) + blob[96:], blob[:-1]):
        with led.engine.begin() as conn:
            conn.execute(sa.text("UPDATE ledger_leaves SET leaf_hashes = :b"), {"b": bad})
        rep = led.audit()
        assert not rep.ok and any("leaf" in p for p in rep.problems)
    with led.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_leaves SET leaf_hashes = :b"), {"b": blob})
    assert led.audit().ok
    with led.engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_checkpoints SET note = :n"), {"n": "x\n\n— y AAAA\n"})
    rep = led.audit()
    assert not rep.ok and any("checkpoint" in p for p in rep.problems)


def test_accounts_batch_statuses_persist(led: Ledger) -> None:
    res = led.create_accounts(
        [Account(id=1, ledger=1, code=1), Account(id=1, ledger=1, code=1), Account(id=2, ledger=0, code=1)]
    )
    assert [r.status for r in res] == [
        CreateAccountStatus.CREATED,
        CreateAccountStatus.EXISTS,
        CreateAccountStatus.LEDGER_MUST_NOT_BE_ZERO,
    ]
    assert (
        led.create_accounts([Account(id=1, ledger=1, code=2)])[0].status
        is CreateAccountStatus.EXISTS_WITH_DIFFERENT_CODE
    )
    assert [a.id for a in led.lookup_accounts([1, 2])] == [1]


def test_audit_checks_the_checkpoint_with_the_given_log_keys(db_url: str) -> None:
    with Ledger.open(db_url, signing_key=KEY, origin="test.example/ledger") as led:
        accounts(led, 1, 2)
        led.create_transfers([tr(1, 1, 2, 3)])
        vkey = led.verifier_key
    with Ledger.open(db_url) as reopened:  # ephemeral key: the signature cannot be checked by it
        rep = reopened.audit()
        assert rep.ok and rep.notes
        assert reopened.audit([vkey]).ok
        other = note.NoteSigner("test.example/ledger", SigningKey(b"\x09" * 32)).verifier
        bad = reopened.audit([other])
        assert not bad.ok and any("checkpoint" in p for p in bad.problems)


def test_sqlite_writers_of_all_processes_take_turns_on_the_writer_lock(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A batch waits while another process holds `<database>.ledger-writer.lock`, and goes on when
    it is released (no busy-handler polling)."""
    import fcntl
    import os

    db = tmp_path / "turns.db"
    with Ledger.open(f"sqlite:///{db}", signing_key=KEY, clock=clock) as led:
        accounts(led, 1, 2)
        lock_path = tmp_path / "turns.db.ledger-writer.lock"
        assert lock_path.exists()
        other = os.open(lock_path, os.O_RDWR)  # another open file: as another process would hold it
        try:
            fcntl.flock(other, fcntl.LOCK_EX)
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(led.create_transfers, [tr(10, 1, 2, 5)])
                with pytest.raises(TimeoutError):
                    pending.result(timeout=0.3)
                fcntl.flock(other, fcntl.LOCK_UN)
                assert [r.status for r in pending.result(timeout=10)] == [CreateTransferStatus.CREATED]
        finally:
            os.close(other)
        assert led.lookup_accounts([2])[0].credits_posted == 5


def test_transfer_blocks_fill_sqlite_pages(tmp_path: Path) -> None:
    """A block row of TRANSFER_BLOCK encodings fits one 4 KiB page and leaves little of it unused."""
    with Ledger.open(f"sqlite:///{tmp_path / 'pages.db'}", signing_key=KEY) as led:
        accounts(led, 1, 2)
        n = 31 * 60
        assert all(
            r.status is S.CREATED for r in led.create_transfers([tr(1 + i, 1, 2, 1) for i in range(n)])
        )
        with led.engine.connect() as conn:
            try:
                pages = conn.exec_driver_sql(
                    "SELECT count(*) FROM dbstat WHERE name = 'ledger_transfer_blocks'"
                ).scalar_one()
            except sa.exc.OperationalError:
                pytest.skip("this SQLite has no dbstat table")
    assert n * TRANSFER_SIZE / 4096 <= pages <= n * TRANSFER_SIZE / 4096 * 1.1 + 2


def test_blocks_of_any_length_read_back(led: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks written with another block length (as by earlier versions) read back beside new ones."""
    accounts(led, 1, 2)
    monkeypatch.setattr("ledger.store.TRANSFER_BLOCK", 16)
    led.create_transfers([tr(1 + i, 1, 2, 1) for i in range(40)])
    monkeypatch.undo()
    led.create_transfers([tr(100 + i, 2, 1, 1) for i in range(70)])
    ids = [*range(1, 41), *range(100, 170)]
    assert [t.id for t in led.lookup_transfers(ids)] == ids
    assert [t.id for t in led.get_account_transfers(1, limit=200)] == ids
    assert [led.leaf_index(t.timestamp) for t in led.lookup_transfers([1, 17, 40, 100, 131, 169])] == [
        0, 16, 39, 40, 71, 109,
    ]  # fmt: skip
    assert led.audit().ok
