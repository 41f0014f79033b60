"""`Ledger`: the pure engine over SQLite or PostgreSQL, with a Merkle log and signed checkpoints.

One batch is one database transaction (group commit): load only the rows the batch touches, apply
the pure engine, write every change back with bulk statements, append the new transfers as Merkle
leaves, sign a checkpoint, commit. A batch that raises leaves nothing behind; an acknowledged batch
is on disk (SQLite WAL with synchronous=FULL, or PostgreSQL's commit).

Concurrency: batches of one `Ledger` are serialized by a lock. Across processes the database
serializes them: BEGIN IMMEDIATE on SQLite, `SELECT ... FOR UPDATE` of the log's meta row (the
Merkle log is one sequence) and of every touched account on PostgreSQL. On SQLite the ledger keeps
an account cache that is valid only while no other process committed since (checked against a
commit counter read inside the locked transaction).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from nacl.signing import SigningKey

from identity.sql import Clock, open_engine, system_clock_ns

from . import engine as eng
from . import merkle, note
from .codec import encode_transfer
from .tables import create_schema
from .types import (
    BATCH_MAX,
    Account,
    BatchTooLargeError,
    CreateAccountResult,
    CreateTransferResult,
    LedgerError,
    LedgerInvariantError,
    PendingState,
    Transfer,
    TransferFlags,
)

if TYPE_CHECKING:
    from .audit import AuditReport
    from .committer import GroupCommitter

__all__ = ["DEFAULT_ORIGIN", "NODE_MIN_LEVEL", "Ledger", "LogState"]

DEFAULT_ORIGIN = "civitas.local/ledger"
NODE_MIN_LEVEL = 8  # interior Merkle nodes cached from this level up (subtrees of >= 256 leaves)
ACCOUNT_CACHE_MAX = 2_000_000
_CHUNK = 8000
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)

_ACCOUNT_COLS = (
    "id, debits_pending, debits_posted, credits_pending, credits_posted, user_data_128, "
    "user_data_64, user_data_32, ledger, code, flags, timestamp"
)
_TRANSFER_COLS = (
    "id, debit_account_id, credit_account_id, amount, pending_id, user_data_128, user_data_64, "
    "user_data_32, timeout, ledger, code, flags, timestamp"
)


def _s64(v: int) -> int:
    return v - _U64 if v > _I64_MAX else v


def _u64(v: int) -> int:
    return v + _U64 if v < 0 else v


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a batch.

    A batch allocates tens of thousands of small tuples; with a large account cache alive every
    young-generation collection would rescan it. Reference counting still frees everything; the
    collector runs again when the batch is done.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class LogState:
    last_timestamp: int
    tree_size: int
    frontier: bytes
    commit_seq: int


class _Dialect:
    """Parameter style and 128-bit id conversion for raw DB-API statements on the hot path."""

    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"
        self.ph = "%s" if self.pg else "?"

    def id_in(self, v: int) -> Any:
        return uuid.UUID(int=v) if self.pg else v.to_bytes(16, "big")

    def id_out(self, v: Any) -> int:
        return v.int if self.pg else int.from_bytes(v, "big")

    def ids_in(self, vs: Iterable[int]) -> list[Any]:
        if self.pg:
            U = uuid.UUID
            return [U(int=v) for v in vs]
        return [v.to_bytes(16, "big") for v in vs]

    def placeholders(self, n: int) -> str:
        return ", ".join([self.ph] * n)

    def account_row(self, r: Sequence[Any]) -> eng.AccountRow:
        i = self.id_out
        return (i(r[0]), r[1], r[2], r[3], r[4], i(r[5]), _u64(r[6]), r[7], r[8], r[9], r[10], r[11])

    def transfer_row(self, r: Sequence[Any]) -> eng.TransferRow:
        i = self.id_out
        return (
            i(r[0]), i(r[1]), i(r[2]), r[3], i(r[4]), i(r[5]), _u64(r[6]),
            r[7], r[8], r[9], r[10], r[11], r[12],
        )  # fmt: skip

    def transfer_params(self, rows: Sequence[eng.TransferRow]) -> list[tuple[Any, ...]]:
        if self.pg:
            U = uuid.UUID
            return [
                (U(int=r[0]), U(int=r[1]), U(int=r[2]), r[3], U(int=r[4]), U(int=r[5]), _s64(r[6]),
                 r[7], r[8], r[9], r[10], r[11], r[12])
                for r in rows
            ]  # fmt: skip
        return [
            (r[0].to_bytes(16, "big"), r[1].to_bytes(16, "big"), r[2].to_bytes(16, "big"), r[3],
             r[4].to_bytes(16, "big"), r[5].to_bytes(16, "big"),
             r[6] if r[6] <= _I64_MAX else r[6] - _U64, r[7], r[8], r[9], r[10], r[11], r[12])
            for r in rows
        ]  # fmt: skip

    def account_params(self, rows: Iterable[eng.AccountRow]) -> list[tuple[Any, ...]]:
        i = self.id_in
        return [
            (i(r[0]), r[1], r[2], r[3], r[4], i(r[5]), _s64(r[6]), r[7], r[8], r[9], r[10], r[11])
            for r in rows
        ]


class Ledger:
    """A TigerBeetle-style ledger over an SQL database. Thread-safe."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        signing_key: SigningKey | None = None,
        origin: str = DEFAULT_ORIGIN,
        clock: Clock = system_clock_ns,
        account_cache: bool | None = None,
        create: bool = True,
    ) -> None:
        self.engine = engine
        self.origin = origin
        # Without a key the ledger signs with an ephemeral one: checkpoints then verify only for
        # as long as this object lives (fine for tests and demos; give a persistent key in service).
        self.ephemeral_key = signing_key is None
        self.signing_key = signing_key if signing_key is not None else SigningKey.generate()
        self.signer = note.NoteSigner(origin, self.signing_key)
        self.clock = clock
        self._d = _Dialect(engine.dialect.name)
        self._lock = threading.RLock()
        use_cache = (not self._d.pg) if account_cache is None else account_cache
        self._cache: dict[int, eng.AccountRow] | None = {} if use_cache else None
        self._cache_seq = -1
        self._committer: GroupCommitter | None = None
        self._fault: Callable[[str], None] | None = None  # test hook: raise at a named stage
        self._owns_engine = False  # close() disposes only an engine that `open` created
        if create:
            create_schema(engine)
        self._ensure_meta()

    @classmethod
    def open(
        cls,
        url: str,
        *,
        signing_key: SigningKey | None = None,
        origin: str = DEFAULT_ORIGIN,
        clock: Clock = system_clock_ns,
        **kwargs: Any,
    ) -> Ledger:
        """Open (and create the schema of) a ledger at an `sqlite:///` or `postgresql://` URL."""
        engine = open_engine(url)
        if engine.dialect.name == "sqlite":

            @sa.event.listens_for(engine, "connect")
            def _cache_size(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                # Up to 1 GiB of page cache (grows on demand): the per-account history indexes are
                # updated at random positions, so a log of millions of transfers keeps them cached.
                cur.execute("PRAGMA cache_size=-1048576")
                # Checkpoint the WAL less often: pages rewritten by consecutive batches (indexes,
                # balances) are then copied back once. Every commit still fsyncs the WAL.
                cur.execute("PRAGMA wal_autocheckpoint=50000")
                cur.close()

        ledger = cls(engine, signing_key=signing_key, origin=origin, clock=clock, **kwargs)
        ledger._owns_engine = True
        return ledger

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------
    # Plumbing

    def _stage(self, name: str) -> None:
        if self._fault is not None:
            self._fault(name)

    def _ensure_meta(self) -> None:
        with self.engine.begin() as conn:
            row = conn.exec_driver_sql("SELECT id FROM ledger_meta WHERE id = 1").first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.exec_driver_sql(
                            f"INSERT INTO ledger_meta (id, last_timestamp, tree_size, frontier, commit_seq) "
                            f"VALUES (1, 0, 0, {self._d.ph}, 0)",
                            (b"",),
                        )
                except sa.exc.IntegrityError:
                    pass  # another process created it first

    def _read_meta(self, conn: sa.Connection, lock: bool) -> LogState:
        sql = "SELECT last_timestamp, tree_size, frontier, commit_seq FROM ledger_meta WHERE id = 1"
        if lock and self._d.pg:
            sql += " FOR UPDATE"
        row = conn.exec_driver_sql(sql).one()
        return LogState(int(row[0]), int(row[1]), bytes(row[2]), int(row[3]))

    def _select_in(self, conn: sa.Connection, sql_head: str, ids: Sequence[int], tail: str = "") -> list[Any]:
        """Run `sql_head <id IN ...> tail` over chunks of ids."""
        out: list[Any] = []
        if not ids:
            return out
        d = self._d
        if d.pg:
            rows = conn.exec_driver_sql(f"{sql_head} = ANY(%s){tail}", (d.ids_in(ids),)).fetchall()
            return list(rows)
        for k in range(0, len(ids), _CHUNK):
            chunk = ids[k : k + _CHUNK]
            sql = f"{sql_head} IN ({d.placeholders(len(chunk))}){tail}"
            out.extend(conn.exec_driver_sql(sql, tuple(d.ids_in(chunk))).fetchall())
        return out

    def _load_accounts(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, eng.AccountRow]:
        d = self._d
        cache = self._cache
        want = [i for i in set(ids) if 0 < i < (1 << 128) - 1]
        if cache is not None:
            missing = [i for i in want if i not in cache]
            if missing:
                for r in self._select_in(
                    conn, f"SELECT {_ACCOUNT_COLS} FROM ledger_accounts WHERE id", missing
                ):
                    row = d.account_row(r)
                    cache[row[0]] = row
            return cache
        tail = " FOR UPDATE" if d.pg else ""
        rows = self._select_in(conn, f"SELECT {_ACCOUNT_COLS} FROM ledger_accounts WHERE id", want, tail)
        return {row[0]: row for row in map(d.account_row, rows)}

    def _load_transfers(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, eng.TransferRow]:
        d = self._d
        want = [i for i in set(ids) if 0 < i < (1 << 128) - 1]
        rows = self._select_in(conn, f"SELECT {_TRANSFER_COLS} FROM ledger_transfers WHERE id", want)
        return {row[0]: row for row in map(d.transfer_row, rows)}

    def _validate_cache(self, state: LogState) -> None:
        if self._cache is not None and (
            state.commit_seq != self._cache_seq or len(self._cache) > ACCOUNT_CACHE_MAX
        ):
            self._cache.clear()

    def _finish_meta(
        self, conn: sa.Connection, state: LogState, last_ts: int, frontier: merkle.Frontier
    ) -> int:
        seq = state.commit_seq + 1
        ph = self._d.ph
        conn.exec_driver_sql(
            f"UPDATE ledger_meta SET last_timestamp = {ph}, tree_size = {ph}, frontier = {ph}, commit_seq = {ph} "
            f"WHERE id = 1",
            (last_ts, frontier.size, frontier.to_bytes(), seq),
        )
        return seq

    # ----------------------------------------------------------------------------------------
    # Accounts

    def create_accounts(self, accounts: Sequence[Account]) -> list[CreateAccountResult]:
        """Create a batch of accounts (at most BATCH_MAX); one result per event, in order."""
        n = len(accounts)
        if n > BATCH_MAX:
            raise BatchTooLargeError(f"a batch holds at most {BATCH_MAX} events, got {n}")
        if n == 0:
            return []
        d = self._d
        with self._lock:
            try:
                with self.engine.begin() as conn:
                    state = self._read_meta(conn, lock=True)
                    self._validate_cache(state)
                    ids = [a.id for a in accounts]
                    existing = {
                        row[0]: row
                        for row in map(
                            d.account_row,
                            self._select_in(
                                conn, f"SELECT {_ACCOUNT_COLS} FROM ledger_accounts WHERE id", ids
                            ),
                        )
                    }
                    out = eng.create_accounts(
                        eng.AccountSnapshot(existing, state.last_timestamp), accounts, self.clock()
                    )
                    if out.created:
                        conn.exec_driver_sql(
                            f"INSERT INTO ledger_accounts ({_ACCOUNT_COLS}) VALUES ({d.placeholders(12)})",
                            d.account_params(out.created),
                        )
                    self._stage("accounts_inserted")
                    frontier = merkle.Frontier.from_bytes(state.tree_size, state.frontier)
                    seq = self._finish_meta(conn, state, out.last_timestamp, frontier)
            except BaseException:
                self._cache_seq = -1
                raise
            if self._cache is not None:
                for row in out.created:
                    self._cache[row[0]] = row
            self._cache_seq = seq
        return out.results

    def lookup_accounts(self, ids: Sequence[int]) -> list[Account]:
        """The accounts that exist among `ids`, in the order asked (missing ids are skipped)."""
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            rows = self._select_in(
                conn, f"SELECT {_ACCOUNT_COLS} FROM ledger_accounts WHERE id", list(set(ids))
            )
            found = {row[0]: row for row in map(self._d.account_row, rows)}
        return [Account.from_row(found[i]) for i in ids if i in found]

    # ----------------------------------------------------------------------------------------
    # Transfers

    def create_transfers(
        self,
        transfers: Sequence[Transfer],
        *,
        within_transaction: Callable[[sa.Connection, list[CreateTransferResult]], None] | None = None,
    ) -> list[CreateTransferResult]:
        """Apply a batch of transfers (at most BATCH_MAX) in one durable commit.

        `within_transaction(conn, results)` runs inside the batch's transaction after the transfers
        are written; whatever it writes commits with them, and if it raises nothing is committed.
        """
        n = len(transfers)
        if n > BATCH_MAX:
            raise BatchTooLargeError(f"a batch holds at most {BATCH_MAX} events, got {n}")
        if n == 0:
            return []
        with self._lock, _gc_paused():
            try:
                with self.engine.begin() as conn:
                    out, seq = self._create_transfers(conn, transfers)
                    if within_transaction is not None:
                        within_transaction(conn, out.results)
            except BaseException:
                self._cache_seq = -1
                raise
            if self._cache is not None:
                self._cache.update(out.accounts)
            self._cache_seq = seq
        return out.results

    def _create_transfers(
        self, conn: sa.Connection, transfers: Sequence[Transfer]
    ) -> tuple[eng.TransferOutcome, int]:
        d = self._d
        ph = d.ph
        state = self._read_meta(conn, lock=True)
        self._validate_cache(state)
        now = self.clock()
        base = eng.batch_timestamp(now, state.last_timestamp)
        ids: set[int] = set()
        event_ids: list[int] = []
        acc_ids: set[int] = set()
        for t in transfers:
            event_ids.append(t.id)
            ids.add(t.id)
            if t.pending_id:
                ids.add(t.pending_id)
            acc_ids.add(t.debit_account_id)
            acc_ids.add(t.credit_account_id)
        existing = self._load_transfers(conn, ids)
        extra = {r[eng.T_PID] for r in existing.values() if r[eng.T_FLAGS] & _POST} - existing.keys()
        if extra:
            existing.update(self._load_transfers(conn, extra))
        failed = {
            d.id_out(r[0]): int(r[1])
            for r in self._select_in(
                conn, "SELECT id, status FROM ledger_failed_transfers WHERE id", event_ids
            )
        }
        expiring_rows = conn.exec_driver_sql(
            f"SELECT id, state, expires_at_ns, resolved_at_ns FROM ledger_pending "
            f"WHERE state = {ph} AND expires_at_ns > 0 AND expires_at_ns <= {ph} ORDER BY expires_at_ns",
            (int(PendingState.PENDING), base),
        ).fetchall()
        pend: dict[int, eng.PendingRow] = {
            d.id_out(r[0]): (d.id_out(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in expiring_rows
        }
        expiring_ids = list(pend)
        exp_transfers = self._load_transfers(conn, [i for i in expiring_ids if i not in existing])
        exp_transfers.update({i: existing[i] for i in expiring_ids if i in existing})
        expiring = sorted(
            (exp_transfers[i] for i in expiring_ids), key=lambda r: (pend[r[0]][2], r[eng.T_TS])
        )
        pending_ids = [i for i, r in existing.items() if r[eng.T_FLAGS] & _PENDING and i not in pend]
        if pending_ids:
            for r in self._select_in(
                conn,
                "SELECT id, state, expires_at_ns, resolved_at_ns FROM ledger_pending WHERE id",
                pending_ids,
            ):
                pid = d.id_out(r[0])
                pend[pid] = (pid, int(r[1]), int(r[2]), int(r[3]))
        for r in existing.values():
            acc_ids.add(r[eng.T_DR])
            acc_ids.add(r[eng.T_CR])
        for r in expiring:
            acc_ids.add(r[eng.T_DR])
            acc_ids.add(r[eng.T_CR])
        accounts = self._load_accounts(conn, acc_ids)
        self._stage("rows_loaded")
        snap = eng.TransferSnapshot(accounts, existing, pend, failed, expiring, state.last_timestamp)
        out = eng.create_transfers(snap, transfers, now)
        self._stage("engine_applied")

        # Write back: transfers, Merkle leaves and nodes, accounts, pending states, failures, meta.
        created = out.created
        if created:
            conn.exec_driver_sql(
                f"INSERT INTO ledger_transfers ({_TRANSFER_COLS}) VALUES ({d.placeholders(13)})",
                d.transfer_params(created),
            )
        self._stage("transfers_inserted")
        frontier = merkle.Frontier.from_bytes(state.tree_size, state.frontier)
        first_leaf = frontier.size
        node_rows: list[tuple[int, int, bytes]] = []

        def on_node(level: int, index: int, h: bytes) -> None:
            if level >= NODE_MIN_LEVEL:
                node_rows.append((level, index, h))

        sha = hashlib.sha256
        leaf_hashes = [sha(b"\x00" + encode_transfer(r)).digest() for r in created]
        append = frontier.append
        for h in leaf_hashes:
            append(h, on_node)
        if leaf_hashes:
            conn.exec_driver_sql(
                f"INSERT INTO ledger_leaves (first_leaf_index, leaf_hashes) VALUES ({ph}, {ph})",
                (first_leaf, b"".join(leaf_hashes)),
            )
        if node_rows:
            conn.exec_driver_sql(
                f"INSERT INTO ledger_nodes (level, node_index, node_hash) VALUES ({ph}, {ph}, {ph})",
                node_rows,
            )
        self._stage("leaves_inserted")
        if out.accounts:
            # Accounts are keyed by their (immutable, unique) creation timestamp: an integer key.
            res = conn.exec_driver_sql(
                f"UPDATE ledger_accounts SET debits_pending = {ph}, debits_posted = {ph}, credits_pending = {ph}, "
                f"credits_posted = {ph}, flags = {ph} WHERE timestamp = {ph}",
                [(a[1], a[2], a[3], a[4], a[10], a[11]) for a in out.accounts.values()],
            )
            if res.rowcount >= 0 and res.rowcount != len(out.accounts):
                raise LedgerInvariantError("an account balance update did not find its account")
        self._stage("accounts_updated")
        if out.pending:
            new = [p for pid, p in out.pending.items() if pid in out.pending_new]
            changed = [p for pid, p in out.pending.items() if pid not in out.pending_new]
            if new:
                conn.exec_driver_sql(
                    f"INSERT INTO ledger_pending (id, state, expires_at_ns, resolved_at_ns) VALUES ({ph}, {ph}, {ph}, {ph})",
                    [(d.id_in(p[0]), p[1], p[2], p[3]) for p in new],
                )
            if changed:
                conn.exec_driver_sql(
                    f"UPDATE ledger_pending SET state = {ph}, resolved_at_ns = {ph} WHERE id = {ph}",
                    [(p[1], p[3], d.id_in(p[0])) for p in changed],
                )
        if out.failed:
            conn.exec_driver_sql(
                f"INSERT INTO ledger_failed_transfers (id, status, timestamp) VALUES ({ph}, {ph}, {ph})",
                [(d.id_in(i), s, ts) for i, s, ts in out.failed],
            )
        seq = self._finish_meta(conn, state, out.last_timestamp, frontier)
        if leaf_hashes:
            root = frontier.root()
            signed = note.sign_note(
                note.format_checkpoint(note.Checkpoint(self.origin, frontier.size, root)), self.signer
            )
            conn.exec_driver_sql(
                f"INSERT INTO ledger_checkpoints (tree_size, root_hash, timestamp, note) VALUES ({ph}, {ph}, {ph}, {ph})",
                (frontier.size, root, out.last_timestamp, signed),
            )
        self._stage("before_commit")
        return out, seq

    def lookup_transfers(self, ids: Sequence[int]) -> list[Transfer]:
        """The transfers that exist among `ids`, in the order asked (missing ids are skipped)."""
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            found = self._load_transfers(conn, ids)
        return [Transfer.from_row(found[i]) for i in ids if i in found]

    def get_account_transfers(
        self,
        account_id: int,
        *,
        limit: int = 100,
        after: int = 0,
        debits: bool = True,
        credits: bool = True,
        reverse: bool = False,
        before: int = 0,
    ) -> list[Transfer]:
        """Transfers debiting and/or crediting an account, by timestamp, strictly after `after`
        (and strictly before `before` when nonzero); newest first when `reverse`. At most `limit`."""
        if not 0 < limit <= BATCH_MAX:
            raise LedgerError(f"limit must be in 1..{BATCH_MAX}")
        d = self._d
        ph = d.ph
        order = "DESC" if reverse else "ASC"
        hi = before if before else (1 << 63) - 1
        rows: list[eng.TransferRow] = []
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            for col, wanted in (("debit_account_id", debits), ("credit_account_id", credits)):
                if not wanted:
                    continue
                res = conn.exec_driver_sql(
                    f"SELECT {_TRANSFER_COLS} FROM ledger_transfers WHERE {col} = {ph} AND timestamp > {ph} "
                    f"AND timestamp < {ph} ORDER BY timestamp {order} LIMIT {ph}",
                    (d.id_in(account_id), after, hi, limit),
                )
                rows.extend(map(d.transfer_row, res.fetchall()))
        rows.sort(key=lambda r: r[eng.T_TS], reverse=reverse)
        return [Transfer.from_row(r) for r in rows[:limit]]

    def pending_state(self, transfer_id: int) -> PendingState | None:
        """State of a pending transfer (PENDING, POSTED, VOIDED or EXPIRED), None if not pending."""
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            row = conn.exec_driver_sql(
                f"SELECT state FROM ledger_pending WHERE id = {self._d.ph}", (self._d.id_in(transfer_id),)
            ).first()
        return PendingState(int(row[0])) if row else None

    # ----------------------------------------------------------------------------------------
    # Group commit

    def submit_transfer(self, transfer: Transfer) -> Future[CreateTransferResult]:
        """Queue one transfer; concurrent submissions are coalesced into one batch commit."""
        if self._committer is None:
            with self._lock:
                if self._committer is None:
                    from .committer import GroupCommitter

                    self._committer = GroupCommitter(self)
        return self._committer.submit(transfer)

    # ----------------------------------------------------------------------------------------
    # Merkle log

    def log_state(self) -> LogState:
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            return self._read_meta(conn, lock=False)

    @property
    def tree_size(self) -> int:
        return self.log_state().tree_size

    def root(self, tree_size: int | None = None) -> bytes:
        """Root hash of the log at `tree_size` (default: now)."""
        st = self.log_state()
        if tree_size is None or tree_size == st.tree_size:
            return merkle.Frontier.from_bytes(st.tree_size, st.frontier).root()
        self._check_size(tree_size, st.tree_size)
        if tree_size == 0:
            return merkle.EMPTY_ROOT
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            return merkle.subtree_root(0, tree_size, self._perfect(conn))

    @staticmethod
    def _check_size(size: int, current: int) -> None:
        if not 0 <= size <= current:
            raise merkle.ProofError(f"tree size {size} is beyond the log's size {current}")

    def leaf_hash(self, leaf_index: int) -> bytes:
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            found = self._leaf_slice(conn, leaf_index, leaf_index + 1)
        if not found:
            raise merkle.ProofError(f"no leaf {leaf_index}")
        return found[0]

    def _leaf_slice(self, conn: sa.Connection, start: int, end: int) -> list[bytes]:
        """Leaf hashes start .. end-1 (fewer if the log ends before `end`), read from the
        per-batch rows that hold them."""
        ph = self._d.ph
        if start < 0 or end <= start:
            return []
        rows = conn.exec_driver_sql(
            f"SELECT first_leaf_index, leaf_hashes FROM ledger_leaves WHERE first_leaf_index >= "
            f"(SELECT COALESCE(MAX(first_leaf_index), 0) FROM ledger_leaves WHERE first_leaf_index <= {ph}) "
            f"AND first_leaf_index < {ph} ORDER BY first_leaf_index",
            (start, end),
        ).fetchall()
        out: list[bytes] = []
        expect = -1
        for first, blob in rows:
            data = bytes(blob)
            if len(data) % 32 or (expect >= 0 and int(first) != expect):
                raise LedgerInvariantError(f"Merkle leaf rows around leaf {first} are malformed")
            expect = int(first) + len(data) // 32
            lo = max(start - int(first), 0)
            hi = min(end - int(first), len(data) // 32)
            out.extend(data[32 * k : 32 * k + 32] for k in range(lo, hi))
        if out and (not rows or int(rows[0][0]) > start):
            raise LedgerInvariantError(f"Merkle leaf {start} is missing")
        return out

    def _perfect(self, conn: sa.Connection) -> merkle.PerfectHash:
        """Perfect-subtree hashes from the leaf and node tables (small subtrees hashed on the fly)."""
        ph = self._d.ph
        memo: dict[tuple[int, int], bytes] = {}

        def leaves(start: int, end: int) -> list[bytes]:
            found = self._leaf_slice(conn, start, end)
            if len(found) != end - start:
                raise LedgerInvariantError(f"Merkle leaves {start}..{end} are missing")
            return found

        def perfect(level: int, index: int) -> bytes:
            key = (level, index)
            h = memo.get(key)
            if h is not None:
                return h
            if level >= NODE_MIN_LEVEL:
                row = conn.exec_driver_sql(
                    f"SELECT node_hash FROM ledger_nodes WHERE level = {ph} AND node_index = {ph}",
                    (level, index),
                ).first()
                if row is None:
                    raise LedgerInvariantError(f"Merkle node ({level}, {index}) is missing")
                h = bytes(row[0])
            else:
                layer = leaves(index << level, (index + 1) << level)
                while len(layer) > 1:
                    layer = [merkle.node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
                h = layer[0]
            memo[key] = h
            return h

        return perfect

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf `leaf_index` in the tree of `tree_size` leaves."""
        self._check_size(tree_size, self.tree_size)
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            return merkle.inclusion_proof(leaf_index, tree_size, self._perfect(conn))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes of the log."""
        self._check_size(new_size, self.tree_size)
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            return merkle.consistency_proof(old_size, new_size, self._perfect(conn))

    @property
    def verifier_key(self) -> str:
        """The C2SP verifier key string of the log (`<origin>+<key ID>+<base64 key>`)."""
        return self.signer.verifier.vkey()

    def checkpoint(self) -> str:
        """The latest signed checkpoint (a C2SP signed note) for the current tree."""
        st = self.log_state()
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            row = conn.exec_driver_sql(
                f"SELECT note FROM ledger_checkpoints WHERE tree_size = {self._d.ph}", (st.tree_size,)
            ).first()
        if row is not None:
            try:
                note.verify_note(str(row[0]), [self.signer.verifier])
                return str(row[0])
            except note.NoteError:
                pass  # signed by an earlier (e.g. ephemeral) key: sign it afresh below
        root = merkle.Frontier.from_bytes(st.tree_size, st.frontier).root()
        return note.sign_note(
            note.format_checkpoint(note.Checkpoint(self.origin, st.tree_size, root)), self.signer
        )

    def stored_checkpoint(self, tree_size: int) -> str | None:
        """The checkpoint note stored when the log reached `tree_size`, if any."""
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            row = conn.exec_driver_sql(
                f"SELECT note FROM ledger_checkpoints WHERE tree_size = {self._d.ph}", (tree_size,)
            ).first()
        return str(row[0]) if row else None

    def audit(self, log_keys: Sequence[str | note.NoteVerifier] | None = None) -> AuditReport:
        """Replay the store and check balances, the Merkle log and the latest checkpoint."""
        from .audit import audit

        return audit(self, log_keys)
