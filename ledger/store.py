"""`Ledger`: the pure engine over SQLite or PostgreSQL, with a Merkle log and signed checkpoints.

One batch is one database transaction (group commit): load only the rows the batch touches, apply
the pure engine, write every change back with bulk statements, append the new transfers as Merkle
leaves, sign a checkpoint, commit. A batch that raises leaves nothing behind; an acknowledged batch
is on disk (SQLite WAL with synchronous=FULL, or PostgreSQL's commit).

Storage (ledger/tables.py): a transfer is written once, as its canonical encoding in a block of
consecutive transfers plus an id -> timestamp row; a batch appends one history row per account it
touched (chained to the account's previous one) and rewrites the narrow balance rows of those
accounts. Nothing is inserted at random positions of an index that grows with the log.

Concurrency: batches of one `Ledger` are serialized by a lock. Across processes the database
serializes them: BEGIN IMMEDIATE on SQLite, `SELECT ... FOR UPDATE` of the log's meta row (the
Merkle log is one sequence) and of every touched account on PostgreSQL. On a SQLite file the
ledger writers of all processes first take turns on an flock'd `<database>.ledger-writer.lock`,
which wakes the next writer at once where SQLite's busy handler would sleep and poll. On SQLite the ledger keeps
an account cache that is valid only while no other process committed since (checked against a
commit counter read inside the locked transaction). The commit itself runs on a worker thread
there, so the batch's Python bookkeeping overlaps SQLite writing and syncing the WAL; the call
returns only once the commit is durable.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain, pairwise
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import sqlalchemy as sa
from nacl.signing import SigningKey

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's busy handler alone orders writers of several processes
    fcntl = None  # type: ignore[assignment]

from identity.sql import Clock, open_engine, system_clock_ns

from . import engine as eng
from . import merkle, note
from .codec import decode_transfers, encode_transfers
from .columns import C_HEAD, C_TS, AccountChanges, AccountTable, Column, positions
from .tables import TRANSFER_BLOCK, create_schema
from .types import (
    BATCH_MAX,
    ID_MAX,
    Account,
    AccountBalance,
    AccountFlags,
    BatchTooLargeError,
    CreateAccountResult,
    CreateTransferResult,
    LedgerError,
    LedgerInvariantError,
    LedgerValueError,
    PendingState,
    Transfer,
    TransferFlags,
)
from .wal_checkpointer import WalCheckpointer

if TYPE_CHECKING:
    from .audit import AuditReport
    from .committer import GroupCommitter

__all__ = ["DEFAULT_ORIGIN", "NODE_MIN_LEVEL", "Ledger", "LogState"]

DEFAULT_ORIGIN = "civitas.local/ledger"
NODE_MIN_LEVEL = 8  # interior Merkle nodes cached from this level up (subtrees of >= 256 leaves)
ACCOUNT_CACHE_MAX = 2_000_000
_CHUNK = 8000
_ROWS_PER_STATEMENT = 500  # rows of one multi-row INSERT (bound parameters stay far below limits)
_HISTORY_ROWS = BATCH_MAX  # history rows read per statement while walking an account's chain
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_HISTORY = int(AccountFlags.HISTORY)

# An account row in `Account` field order, then the head of its history chain.
_ACCOUNT_SELECT = (
    "SELECT a.id, b.debits_pending, b.debits_posted, b.credits_pending, b.credits_posted, a.user_data_128, "
    "a.user_data_64, a.user_data_32, a.ledger, a.code, b.flags, a.timestamp, b.history_head "
    "FROM ledger_accounts a JOIN ledger_balances b ON b.timestamp = a.timestamp"
)
_BALANCE_COLS = (
    "timestamp, debits_pending, debits_posted, credits_pending, credits_posted, flags, history_head"
)

_id_of, _pid_of, _dr_of, _cr_of = eng._id_of, eng._pid_of, eng._dr_of, eng._cr_of
_ts_of = itemgetter(eng.T_TS)
_row_dr_of, _row_cr_of = itemgetter(eng.T_DR), itemgetter(eng.T_CR)
_M64 = _U64 - 1


def _mix(x: int) -> int:
    """A 64-bit mixer (splitmix64's finalizer): sums of mixed values compare multisets."""
    x = (x ^ x >> 30) * 0xBF58476D1CE4E5B9 & _M64
    x = (x ^ x >> 27) * 0x94D049BB133111EB & _M64
    return x ^ x >> 31


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


def _refuse_an_earlier_layout(engine: sa.Engine) -> None:
    """A database written before migration ledger_0003 keeps transfers as rows; creating the
    missing tables beside them would hide its data. It must be migrated instead."""
    inspector = sa.inspect(engine)
    if inspector.has_table("ledger_transfers") and "amount" in {
        c["name"] for c in inspector.get_columns("ledger_transfers")
    }:
        raise LedgerError(
            "this database holds the ledger's earlier storage layout: apply the migrations first "
            "(`civitas migrate`, or alembic's ledger branch)"
        )


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

    def blobs(self, values: Iterable[bytes]) -> Iterable[Any]:
        """Blob parameters for a bulk statement. Python's sqlite3 binds a bytearray directly but
        looks for an adapter for every bytes object, which costs more than the copy."""
        return values if self.pg else map(bytearray, values)

    def account_row(self, r: Sequence[Any]) -> eng.AccountRow:
        i = self.id_out
        return (i(r[0]), r[1], r[2], r[3], r[4], i(r[5]), _u64(r[6]), r[7], r[8], r[9], r[10], r[11])

    def stamps_param(self, stamps: Collection[int]) -> tuple[Any]:
        """A list of timestamps as one parameter (see `stamps_table`)."""
        return (list(stamps),) if self.pg else (json.dumps(list(stamps)),)

    def stamps_table(self) -> str:
        """A table expression with one column `t` over the list bound by `stamps_param`."""
        return "unnest(%s::bigint[]) AS u(t)" if self.pg else "(SELECT value AS t FROM json_each(?)) AS u"


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
        self._cache: AccountTable | None = AccountTable() if use_cache else None
        self._cache_seq = -1
        self._committer: GroupCommitter | None = None
        self._commit_worker: ThreadPoolExecutor | None = None
        self._fault: Callable[[str], None] | None = None  # test hook: raise at a named stage
        db = engine.url.database if engine.dialect.name == "sqlite" else None
        self._writer_lock_path = (
            f"{db}.ledger-writer.lock"
            if fcntl is not None and db and db != ":memory:" and not db.startswith("file:")
            else None
        )
        self._writer_lock_fd: tuple[int, int] | None = None  # (pid, fd): a forked child opens its own
        self._checkpointer: WalCheckpointer | None = None  # see `open`
        self._owns_engine = False  # close() disposes only an engine that `open` created
        if create:
            _refuse_an_earlier_layout(engine)
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
                # Up to 1 GiB of page cache (grows on demand): balance rows and the id index of a
                # large ledger stay cached.
                cur.execute("PRAGMA cache_size=-1048576")
                # The ledger's checkpointer thread copies the WAL back between batches; the
                # writer's own checkpoint (which would stall a commit) is only the backstop for a
                # log the thread cannot keep up with. Every commit still fsyncs the WAL.
                cur.execute("PRAGMA wal_autocheckpoint=50000")
                cur.close()

        ledger = cls(engine, signing_key=signing_key, origin=origin, clock=clock, **kwargs)
        ledger._owns_engine = True
        db = engine.url.database
        if db and ledger._writer_lock_path is not None:  # a SQLite file
            # its log is copied back by a thread about every two full batches (wal_checkpointer)
            ledger._checkpointer = WalCheckpointer(db, min_events=2 * BATCH_MAX)
        return ledger

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None
        if self._commit_worker is not None:
            self._commit_worker.shutdown()
            self._commit_worker = None
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._writer_lock_fd is not None and self._writer_lock_fd[0] == os.getpid():
            os.close(self._writer_lock_fd[1])
        self._writer_lock_fd = None
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

    def _insert_rows(
        self,
        conn: sa.Connection,
        head: str,
        width: int,
        values: Sequence[Any],
        tail: str = "",
        first: tuple[Any, ...] = (),
    ) -> None:
        """`head VALUES (...), (...), ... tail` over `values` (row after row, `width` each), with the
        parameters `first` bound before them: a few statements of many rows instead of one driver
        round trip per row."""
        per = _ROWS_PER_STATEMENT * width
        row = f"({self._d.placeholders(width)})"
        for k in range(0, len(values), per):
            part = values[k : k + per]
            sql = f"{head} VALUES {', '.join([row] * (len(part) // width))}{tail}"
            conn.exec_driver_sql(sql, (*first, *part))

    def _load_accounts(self, conn: sa.Connection, ids: Iterable[int]) -> AccountTable:
        """A table holding the accounts among `ids` (with the heads of their history chains): the
        cache, once it holds them, or a table of this batch's accounts (locked on PostgreSQL)."""
        d = self._d
        cache = self._cache
        want = [i for i in (set(ids) if cache is None else set(ids) - cache.keys()) if 0 < i < ID_MAX]
        tail = " FOR UPDATE" if d.pg and cache is None else ""
        found = self._select_in(conn, f"{_ACCOUNT_SELECT} WHERE a.id", want, tail)
        rows = list(map(d.account_row, found))
        heads = [int(r[12]) for r in found]
        if cache is None:
            return AccountTable.of(rows, heads)
        cache.put(rows, heads)
        return cache

    def _transfers_at(self, conn: sa.Connection, stamps: Collection[int]) -> dict[int, eng.TransferRow]:
        """The committed transfers stamped `stamps` (timestamp -> row), read from their blocks."""
        if not stamps:
            return {}
        d = self._d
        rows = conn.exec_driver_sql(
            "SELECT transfers FROM ledger_transfer_blocks WHERE first_timestamp IN (SELECT (SELECT "
            "first_timestamp FROM ledger_transfer_blocks WHERE first_timestamp <= u.t ORDER BY first_timestamp "
            f"DESC LIMIT 1) FROM {d.stamps_table()})",
            d.stamps_param(stamps),
        ).fetchall()
        want = set(stamps)
        return {
            r[eng.T_TS]: r for (blob,) in rows for r in decode_transfers(bytes(blob)) if r[eng.T_TS] in want
        }

    def _load_transfers(self, conn: sa.Connection, ids: Iterable[int]) -> dict[int, eng.TransferRow]:
        d = self._d
        want = [i for i in set(ids) if 0 < i < ID_MAX]
        index = {
            d.id_out(r[0]): int(r[1])
            for r in self._select_in(conn, "SELECT id, timestamp FROM ledger_transfers WHERE id", want)
        }
        by_ts = self._transfers_at(conn, index.values())
        out: dict[int, eng.TransferRow] = {}
        for tid, ts in index.items():
            row = by_ts.get(ts)
            if row is None or row[0] != tid:
                raise LedgerInvariantError(f"transfer {tid}: its id row and its stored block disagree")
            out[tid] = row
        return out

    def _max_transfer_id(self, conn: sa.Connection) -> int:
        """The largest id of a committed or failed transfer (0 if none)."""
        top = 0
        for table in ("ledger_transfers", "ledger_failed_transfers"):
            row = conn.exec_driver_sql(f"SELECT id FROM {table} ORDER BY id DESC LIMIT 1").first()
            if row is not None:
                top = max(top, self._d.id_out(row[0]))
        return top

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

    def _account_rows(self, conn: sa.Connection) -> Iterator[eng.AccountRow]:
        """Every account, by timestamp (for the audit)."""
        for r in conn.exec_driver_sql(f"{_ACCOUNT_SELECT} ORDER BY a.timestamp"):
            yield self._d.account_row(r)

    def _transfer_rows(self, conn: sa.Connection) -> Iterator[eng.TransferRow]:
        """Every committed transfer, by timestamp (for the audit)."""
        res = conn.exec_driver_sql("SELECT transfers FROM ledger_transfer_blocks ORDER BY first_timestamp")
        while rows := res.fetchmany(256):
            for (blob,) in rows:
                yield from decode_transfers(bytes(blob))

    def _storage_problems(self, conn: sa.Connection) -> Iterator[str]:
        """Cross-check what the store maintains beside the transfer blocks (for the audit): the id
        rows, each block's first leaf index, and every account's history chain and entries."""
        d = self._d
        accounts = {
            d.id_out(r[0]): int(r[1])
            for r in conn.exec_driver_sql("SELECT id, timestamp FROM ledger_accounts")
        }
        expected: dict[int, int] = {}  # account timestamp -> sum of _mix(ts << 1 | side) over its transfers
        id_rows = conn.exec_driver_sql("SELECT id, timestamp FROM ledger_transfers ORDER BY timestamp")
        ids = (row for rows in iter(lambda: id_rows.fetchmany(4096), []) for row in rows)
        leaf = 0
        blocks = conn.exec_driver_sql(
            "SELECT first_timestamp, first_leaf_index, transfers FROM ledger_transfer_blocks ORDER BY first_timestamp"
        )
        for rows in iter(lambda: blocks.fetchmany(256), []):
            for first_ts, first_leaf, blob in rows:
                try:
                    transfers = decode_transfers(bytes(blob))
                except (TypeError, LedgerValueError):
                    yield f"transfer block {first_ts}: not a whole number of transfer encodings"
                    continue
                if int(first_leaf) != leaf or not transfers or transfers[0][eng.T_TS] != int(first_ts):
                    yield f"transfer block {first_ts}: its key or leaf index does not match its transfers"
                for t in transfers:
                    row = next(ids, None)
                    if row is None or d.id_out(row[0]) != t[0] or int(row[1]) != t[eng.T_TS]:
                        yield f"transfer {t[0]}: its id row does not match its block"
                    for side, aid in ((0, t[eng.T_DR]), (1, t[eng.T_CR])):
                        a = accounts.get(aid, -1)
                        expected[a] = (expected.get(a, 0) + _mix(t[eng.T_TS] << 1 | side)) & _M64
                    leaf += 1
        if next(ids, None) is not None:
            yield "ledger_transfers holds ids without a stored transfer"
        found: dict[int, int] = {}
        last: dict[int, int] = {}
        history = conn.exec_driver_sql(
            "SELECT account_timestamp, seq, batch_timestamp, previous_seq, entries FROM ledger_account_history "
            "ORDER BY account_timestamp, seq"
        )
        for rows in iter(lambda: history.fetchmany(4096), []):
            for account, seq, batch, prev, entries in rows:
                account, batch = int(account), int(batch)
                if int(prev) != last.get(account, 0):
                    yield f"account {account}: history row {seq} is not chained to the one before it"
                last[account] = int(seq)
                data = entries if isinstance(entries, bytes | memoryview) else b"?"  # ? : odd length
                total = found.get(account, 0)
                if len(data) % 2 or not data:
                    yield f"account {account}: history row {seq} is malformed"
                for k in range(0, len(data) - 1, 2):
                    v = data[k] | data[k + 1] << 8
                    total += _mix((batch + (v >> 1)) << 1 | v & 1)
                found[account] = total & _M64
        for ts, head in conn.exec_driver_sql("SELECT timestamp, history_head FROM ledger_balances"):
            if int(head) != last.get(int(ts), 0):
                yield f"account {ts}: the head of its history is not its latest history row"
        for account in expected.keys() | found.keys():
            if expected.get(account) != found.get(account):
                yield f"account {account}: its history entries do not match its transfers"

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
        with self._lock, self._writer_turn():
            try:
                with self.engine.begin() as conn:
                    state = self._read_meta(conn, lock=True)
                    self._validate_cache(state)
                    ids = [a.id for a in accounts]
                    existing = {
                        row[0]: row
                        for row in map(
                            d.account_row, self._select_in(conn, f"{_ACCOUNT_SELECT} WHERE a.id", ids)
                        )
                    }
                    out = eng.create_accounts(
                        eng.AccountSnapshot(existing, state.last_timestamp), accounts, self.clock()
                    )
                    if out.created:
                        i = d.id_in
                        conn.exec_driver_sql(
                            "INSERT INTO ledger_accounts (timestamp, id, user_data_128, user_data_64, user_data_32, "
                            f"ledger, code) VALUES ({d.placeholders(7)})",
                            [(r[11], i(r[0]), i(r[5]), _s64(r[6]), r[7], r[8], r[9]) for r in out.created],
                        )
                        conn.exec_driver_sql(
                            f"INSERT INTO ledger_balances ({_BALANCE_COLS}) VALUES ({d.placeholders(7)})",
                            [(r[11], r[1], r[2], r[3], r[4], r[10], 0) for r in out.created],
                        )
                    self._stage("accounts_inserted")
                    frontier = merkle.Frontier.from_bytes(state.tree_size, state.frontier)
                    seq = self._finish_meta(conn, state, out.last_timestamp, frontier)
            except BaseException:
                self._cache_seq = -1
                raise
            if self._cache is not None:
                self._cache.put(out.created)
            self._cache_seq = seq
        return out.results

    def lookup_accounts(self, ids: Sequence[int]) -> list[Account]:
        """The accounts that exist among `ids`, in the order asked (missing ids are skipped)."""
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            rows = self._select_in(conn, f"{_ACCOUNT_SELECT} WHERE a.id", list(set(ids)))
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
        with self._lock, self._writer_turn(), _gc_paused():
            try:
                with self.engine.begin() as conn:
                    out, changes, heads, seq = self._create_transfers(conn, transfers)
                    if within_transaction is not None:
                        within_transaction(conn, out.results)
                    commit = self._commit_in_background(conn)
                    try:
                        # While SQLite writes and syncs the commit (it does not hold the GIL), this
                        # thread updates the cache (dropped below if the commit fails), lets the
                        # batch's rows go and collects its young objects.
                        if self._cache is not None:
                            self._cache.apply(changes, heads)
                        results = out.results
                        del out, changes, heads
                        gc.collect(0)
                    finally:
                        if commit is not None:
                            self._await_commit(conn, commit)
                if self._checkpointer is not None:
                    self._checkpointer.committed(n)
            except BaseException:
                self._cache_seq = -1
                raise
            self._cache_seq = seq
        return results

    @contextlib.contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """On a SQLite file, the ledger writers of all processes take turns on an flock'd file.

        SQLite's busy handler polls with sleeps of up to 100 ms, so the group committers of several
        worker processes would mostly sleep; a blocking flock hands the turn over as soon as it is
        free. (Called with `self._lock` held.)
        """
        if self._writer_lock_path is None:
            yield
            return
        pid = os.getpid()
        if self._writer_lock_fd is None or self._writer_lock_fd[0] != pid:
            # flock belongs to the open file, which a forked child would share with its parent
            self._writer_lock_fd = (pid, os.open(self._writer_lock_path, os.O_RDWR | os.O_CREAT, 0o600))
        fd = self._writer_lock_fd[1]
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _commit_in_background(self, conn: sa.Connection) -> Future[None] | None:
        """SQLite: start the commit on a worker thread (the caller's `with` block then finds no open
        transaction). None elsewhere: the `with` block commits."""
        if self._d.pg:
            return None
        if self._commit_worker is None:
            self._commit_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-commit")
        dbapi = conn.connection.driver_connection
        return self._commit_worker.submit(dbapi.commit)  # type: ignore[union-attr]

    @staticmethod
    def _await_commit(conn: sa.Connection, commit: Future[None]) -> None:
        try:
            commit.result()
        except sqlite3.ProgrammingError:  # a connection bound to its thread: commit here instead
            conn.connection.driver_connection.commit()  # type: ignore[union-attr]

    def _load_batch(
        self, conn: sa.Connection, transfers: Sequence[Transfer], state: LogState, base: int
    ) -> eng.TransferSnapshot:
        """Read what the batch may touch: its ids and pending ids, their accounts (with the heads of
        their history chains), failed ids, the pending transfers due to expire."""
        d = self._d
        ph = d.ph
        ids = list(map(_id_of, transfers))
        pending_ids = set(map(_pid_of, transfers))
        pending_ids.discard(0)
        acc_ids = set(map(_dr_of, transfers))
        acc_ids.update(map(_cr_of, transfers))
        existing: dict[int, eng.TransferRow] = {}
        failed: dict[int, int] = {}
        # Ids above every stored one (time-ordered ids, as TigerBeetle recommends) need no lookup.
        if pending_ids or not min(ids) > self._max_transfer_id(conn):
            existing = self._load_transfers(conn, set(ids) | pending_ids)
            extra = {r[eng.T_PID] for r in existing.values() if r[eng.T_FLAGS] & _POST} - existing.keys()
            if extra:
                existing.update(self._load_transfers(conn, extra))
            failed = {
                d.id_out(r[0]): int(r[1])
                for r in self._select_in(conn, "SELECT id, status FROM ledger_failed_transfers WHERE id", ids)
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
        expiring: list[eng.TransferRow] = []
        if expiring_ids:
            exp_transfers = self._load_transfers(conn, [i for i in expiring_ids if i not in existing])
            exp_transfers.update({i: existing[i] for i in expiring_ids if i in existing})
            expiring = sorted(
                (exp_transfers[i] for i in expiring_ids), key=lambda r: (pend[r[0]][2], r[eng.T_TS])
            )
        pending_rows = [i for i, r in existing.items() if r[eng.T_FLAGS] & _PENDING and i not in pend]
        if pending_rows:
            for r in self._select_in(
                conn,
                "SELECT id, state, expires_at_ns, resolved_at_ns FROM ledger_pending WHERE id",
                pending_rows,
            ):
                pid = d.id_out(r[0])
                pend[pid] = (pid, int(r[1]), int(r[2]), int(r[3]))
        for r in chain(existing.values(), expiring):
            acc_ids.add(r[eng.T_DR])
            acc_ids.add(r[eng.T_CR])
        accounts = self._load_accounts(conn, acc_ids)
        return eng.TransferSnapshot(accounts, existing, pend, failed, expiring, state.last_timestamp)

    def _create_transfers(
        self, conn: sa.Connection, transfers: Sequence[Transfer]
    ) -> tuple[eng.TransferOutcome, AccountChanges, Column, int]:
        d = self._d
        ph = d.ph
        state = self._read_meta(conn, lock=True)
        self._validate_cache(state)
        now = self.clock()
        snap = self._load_batch(conn, transfers, state, eng.batch_timestamp(now, state.last_timestamp))
        table = cast(AccountTable, snap.accounts)
        self._stage("rows_loaded")
        out = eng.create_transfers(snap, transfers, now)
        self._stage("engine_applied")
        changes = out.accounts
        if not isinstance(changes, AccountChanges):  # the event-by-event path gives rows
            try:
                changes = AccountChanges.of(table, changes)
            except KeyError:
                raise LedgerInvariantError("the engine changed an account it was not given") from None

        # Write back: transfers, Merkle leaves and nodes, history, balances, pending states, failures, meta.
        created = out.created
        frontier = merkle.Frontier.from_bytes(state.tree_size, state.frontier)
        if created:
            encoded = encode_transfers(created)
            first_leaf = frontier.size
            conn.exec_driver_sql(  # bytearray blobs: see _Dialect.blobs
                f"INSERT INTO ledger_transfer_blocks (first_timestamp, first_leaf_index, transfers) "
                f"VALUES ({ph}, {ph}, {ph})",
                [
                    (created[k][eng.T_TS], first_leaf + k, bytearray().join(encoded[k : k + TRANSFER_BLOCK]))
                    for k in range(0, len(created), TRANSFER_BLOCK)
                ],
            )
            ids = d.blobs(d.ids_in(map(itemgetter(0), created)))
            self._insert_rows(
                conn, "INSERT INTO ledger_transfers (id, timestamp)", 2,
                list(chain.from_iterable(zip(ids, map(_ts_of, created), strict=True))),
            )  # fmt: skip
            self._stage("transfers_inserted")
            leaf_hashes = list(map(merkle.leaf_hash, encoded))
            node_rows = frontier.extend(leaf_hashes, NODE_MIN_LEVEL)
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
            if out.balances:
                self._write_account_balances(conn, out.balances, table)
        else:
            self._stage("transfers_inserted")
            self._stage("leaves_inserted")
        heads = self._write_accounts(conn, created, out.sides, table, changes)
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
        if created:
            root = frontier.root()
            signed = note.sign_note(
                note.format_checkpoint(note.Checkpoint(self.origin, frontier.size, root)), self.signer
            )
            conn.exec_driver_sql(
                f"INSERT INTO ledger_checkpoints (tree_size, root_hash, timestamp, note) VALUES ({ph}, {ph}, {ph}, {ph})",
                (frontier.size, root, out.last_timestamp, signed),
            )
        self._stage("before_commit")
        return out, changes, heads, seq

    def _write_accounts(
        self,
        conn: sa.Connection,
        created: Sequence[eng.TransferRow],
        sides: tuple[Column, Column] | None,
        table: AccountTable,
        changes: AccountChanges,
    ) -> Column:
        """Append one history row per account of the batch's transfers (numbered from the table's
        end, each chained to the account's previous head) and rewrite the balance rows of every
        changed account. Returns the changed accounts' new history heads, in `changes` order.

        Both go in account order (the balance rows' key): the updates then walk that table's pages
        in order."""
        slots = changes.slots
        heads: Column = table.cols[C_HEAD, slots]  # a copy (fancy indexing)
        n = len(created)
        if n:
            key = created[0][eng.T_TS]
            offsets = (np.fromiter(map(_ts_of, created), np.int64, n) - key) << 1
            if sides is None:  # the engine did not give the created transfers' account slots
                get = table.slots.__getitem__
                lookups = (map(get, map(_row_dr_of, created)), map(get, map(_row_cr_of, created)))
                entry_slots = np.fromiter(chain(*lookups), np.int64, 2 * n)
            else:
                entry_slots = np.concatenate(sides)
            # History entries: (timestamp - batch timestamp) << 1 | side, as little-endian u16 (a
            # batch's timestamps span at most BATCH_MAX).
            entries = np.concatenate((offsets, offsets | 1))
            accounts = table.cols[C_TS, entry_slots]
            by = np.lexsort((entries, accounts))  # by account, then in timestamp order
            accounts = accounts[by]
            starts = np.flatnonzero(np.diff(accounts, prepend=-1))  # each account's first entry
            m = len(starts)
            first = 1 + int(
                conn.exec_driver_sql("SELECT COALESCE(MAX(seq), 0) FROM ledger_account_history").scalar_one()
            )
            seqs = np.arange(first, first + m, dtype=np.int64)
            moved = entry_slots[by[starts]]
            at = positions(slots, table.cols.shape[1])[moved]
            if np.any(at < 0):
                raise LedgerInvariantError("a transfer of the batch moved an account without changing it")
            previous = heads[at]
            heads[at] = seqs
            data = bytearray(entries[by].astype("<u2").tobytes())
            bounds = (np.append(starts, 2 * n) * 2).tolist()
            values: list[Any] = [None] * (5 * m)
            values[0::5] = seqs.tolist()
            values[1::5] = accounts[starts].tolist()
            values[2::5] = [key] * m
            values[3::5] = previous.tolist()
            values[4::5] = [data[a:b] for a, b in pairwise(bounds)]
            self._insert_rows(
                conn,
                "INSERT INTO ledger_account_history (seq, account_timestamp, batch_timestamp, previous_seq, entries)",
                5,
                values,
            )
        if len(slots):
            self._write_balances(conn, table.cols[C_TS, slots], changes.cols, heads)
        return heads

    def _write_account_balances(
        self, conn: sa.Connection, records: Sequence[eng.BalanceRow], accounts: Mapping[int, eng.AccountRow]
    ) -> None:
        """Insert the HISTORY accounts' balances after each of the batch's transfers, in key order."""
        rows = sorted((accounts[r[0]][eng.A_TS], *r[1:]) for r in records)
        self._insert_rows(
            conn,
            "INSERT INTO ledger_account_balances (account_timestamp, timestamp, side, debits_pending, "
            "debits_posted, credits_pending, credits_posted)",
            7,
            list(chain.from_iterable(rows)),
        )

    def _write_balances(self, conn: sa.Connection, stamps: Column, cols: Column, heads: Column) -> None:
        """Rewrite the balance rows of the accounts stamped `stamps`: their new balances and flags
        (`cols`, as `AccountChanges.cols`) and history heads, in account order."""
        d = self._d
        order = np.argsort(stamps)
        if d.pg:
            ph = d.ph
            params = list(map(tuple, np.vstack((cols, heads, stamps))[:, order].T.tolist()))
            res = conn.exec_driver_sql(
                f"UPDATE ledger_balances SET debits_pending = {ph}, debits_posted = {ph}, credits_pending = {ph}, "
                f"credits_posted = {ph}, flags = {ph}, history_head = {ph} WHERE timestamp = {ph}",
                params,
            )
            if res.rowcount >= 0 and res.rowcount != len(params):
                raise LedgerInvariantError("an account balance update did not find its account")
            return
        # SQLite: whole rows replaced, many per statement (cheaper there than UPDATE or an upsert).
        # Every row exists: the accounts were read in this transaction under its write lock.
        self._insert_rows(
            conn,
            f"INSERT OR REPLACE INTO ledger_balances ({_BALANCE_COLS})",
            7,
            np.vstack((stamps, cols, heads))[:, order].T.ravel().tolist(),
        )

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
        (and strictly before `before` when nonzero); newest first when `reverse`. At most `limit`.

        Walks the account's history rows from the newest back: newest-first pages read about
        `limit` rows; oldest-first pages read every row newer than `after`."""
        if not 0 < limit <= BATCH_MAX:
            raise LedgerError(f"limit must be in 1..{BATCH_MAX}")
        d = self._d
        ph = d.ph
        hi = before if before else (1 << 63) - 1
        sides = {0} if debits else set()
        if credits:
            sides.add(1)
        if not sides:
            return []
        stamps: list[tuple[int, int]] = []  # (timestamp, side), newest first
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            row = self._account_key(conn, account_id)
            if row is None:
                return []
            account_ts, cursor, _flags = row
            walk = (
                "WITH RECURSIVE h(seq, batch, prev, entries) AS ("
                "SELECT seq, batch_timestamp, previous_seq, entries FROM ledger_account_history "
                f"WHERE seq = {ph} AND account_timestamp = {ph} "
                "UNION ALL SELECT x.seq, x.batch_timestamp, x.previous_seq, x.entries "
                "FROM h JOIN ledger_account_history x "
                f"ON x.seq = h.prev AND x.account_timestamp = {ph} WHERE h.batch > {ph}) "
                f"SELECT batch, prev, entries FROM h LIMIT {ph}"
            )
            while cursor and not (reverse and len(stamps) >= limit):
                rows = conn.exec_driver_sql(
                    walk, (cursor, account_ts, account_ts, after, limit if reverse else _HISTORY_ROWS)
                ).fetchall()
                if not rows:
                    raise LedgerInvariantError(f"account {account_id}: history row {cursor} is missing")
                for batch, prev, entries in rows:
                    batch = int(batch)
                    data = bytes(entries)
                    if batch < hi:
                        for k in range(len(data) - 2, -1, -2):
                            v = data[k] | data[k + 1] << 8
                            ts = batch + (v >> 1)
                            if after < ts < hi and v & 1 in sides:
                                stamps.append((ts, v & 1))
                    cursor = int(prev) if batch > after else 0
            stamps = stamps[:limit] if reverse else stamps[::-1][:limit]
            found = self._transfers_at(conn, [ts for ts, _side in stamps])
        out: list[Transfer] = []
        for ts, side in stamps:
            r = found.get(ts)
            if r is None or r[eng.T_CR if side else eng.T_DR] != account_id:
                raise LedgerInvariantError(
                    f"account {account_id}: history entry {ts} has no matching transfer"
                )
            out.append(Transfer.from_row(r))
        return out

    def _account_key(self, conn: sa.Connection, account_id: int) -> tuple[int, int, int] | None:
        """An account's (ledger timestamp, history head, flags), or None if there is no such account."""
        row = conn.exec_driver_sql(
            "SELECT a.timestamp, b.history_head, b.flags FROM ledger_accounts a JOIN ledger_balances b "
            f"ON b.timestamp = a.timestamp WHERE a.id = {self._d.ph}",
            (self._d.id_in(account_id),),
        ).first()
        return None if row is None else (int(row[0]), int(row[1]), int(row[2]))

    def get_account_balances(
        self,
        account_id: int,
        *,
        limit: int = 100,
        timestamp_min: int = 0,
        timestamp_max: int = 0,
        debits: bool = True,
        credits: bool = True,
        reversed: bool = False,
    ) -> list[AccountBalance]:
        """The balances of a HISTORY account right after each of its transfers (TigerBeetle's
        `get_account_balances`): transfers stamped in [timestamp_min, timestamp_max] (inclusive;
        0 leaves that end open) that debit (`debits`) or credit (`credits`) it, oldest first (newest
        first when `reversed`), at most `limit`. Pending amounts released by an expiry show from the
        account's next transfer on. An unknown account or one without HISTORY gives []."""
        if not 0 < limit <= BATCH_MAX:
            raise LedgerError(f"limit must be in 1..{BATCH_MAX}")
        if not (0 <= timestamp_min <= _I64_MAX and 0 <= timestamp_max <= _I64_MAX):
            raise LedgerValueError(f"timestamp_min and timestamp_max must be in 0..{_I64_MAX}")
        hi = timestamp_max or _I64_MAX
        if not (debits or credits) or timestamp_min > hi or not 0 < account_id < ID_MAX:
            return []
        d = self._d
        ph = d.ph
        side = "" if debits and credits else f" AND side = {1 if credits else 0}"
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            row = self._account_key(conn, account_id)
            if row is None or not row[2] & _HISTORY:
                return []
            rows = conn.exec_driver_sql(
                "SELECT debits_pending, debits_posted, credits_pending, credits_posted, timestamp "
                f"FROM ledger_account_balances WHERE account_timestamp = {ph} AND timestamp >= {ph} "
                f"AND timestamp <= {ph}{side} ORDER BY timestamp {'DESC' if reversed else 'ASC'} LIMIT {ph}",
                (int(row[0]), timestamp_min, hi, limit),
            ).fetchall()
        return [AccountBalance(*map(int, r)) for r in rows]

    def leaf_index(self, transfer_timestamp: int) -> int | None:
        """The Merkle leaf index of the committed transfer stamped `transfer_timestamp` (None if none)."""
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            row = conn.exec_driver_sql(
                f"SELECT first_leaf_index, transfers FROM ledger_transfer_blocks WHERE first_timestamp <= {self._d.ph} "
                "ORDER BY first_timestamp DESC LIMIT 1",
                (transfer_timestamp,),
            ).first()
        if row is None:
            return None
        for k, r in enumerate(decode_transfers(bytes(row[1]))):
            if r[eng.T_TS] == transfer_timestamp:
                return int(row[0]) + k
        return None

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
