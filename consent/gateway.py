"""Sensor-reading ingest: verify, decide per reading, minimise, store in bulk, count drops, reward.

One `ingest` call is one transaction (group commit for many batches). Inside it, before any
decision, ingest reads the consent-state version of every citizen whose device is in the call,
with a shared row lock on PostgreSQL (`FOR SHARE`; SQLite's `BEGIN IMMEDIATE` serialises all
writers). A consent change bumps that row first, so it waits for in-flight batches and they
wait for it; the policy index reloads any citizen whose version moved. The cache therefore
stays correct across processes, and a withdrawal at T is seen by every batch decided after it.
Sharing re-checks consent at read time as well (see `consent.sharing`).

A reading is dropped (counted, never stored) when no active consent covers its category at its
minute, or when its timestamp is in the future beyond the allowed clock skew. Stored readings
keep only the unit (owner pseudonym, or the public sensor's id), stream, category, district,
minute and value, plus the id of the set of consent records that permitted it.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from nacl.signing import VerifyKey

from consent import tables as t
from consent.batches import BadSignature, Batch, InvalidBatch, SignedBatch
from consent.devices import Device, DeviceKind, get_devices
from consent.minimise import DEFAULT_GRID, DistrictGrid
from consent.policy import GrantSet, PolicyIndex
from consent.records import MINUTE_NS
from consent.rewards import STATE_NONE, STATE_PENDING, Owed, PaymentReport, RewardConfig, RewardPayer
from consent.sqlutil import chunks, read_connection
from consent.store import load_grants, subject_versions
from consent.vocab import NON_PERSONAL, STREAMS
from identity.sql import Clock, system_clock_ns

__all__ = ["BatchResult", "Gateway", "GatewayConfig", "PolicyCache"]

MAX_BATCHES_PER_CALL = 1_000
READINGS_ORDER_LOCK = 0x636F6E73656E7431  # PostgreSQL advisory lock key ("consent1")
_READING_COLUMNS = (
    "unit",
    "stream",
    "category",
    "district",
    "ts_ns",
    "value",
    "grant_set_id",
    "retain_until_ns",
)


_BATCH_COLUMNS = ("batch_id", "device_id", "received_ns", "readings", "accepted", "dropped")
_COUNT_COLUMNS = (
    "batch_id",
    "category",
    "unit",
    "accepted",
    "dropped_no_consent",
    "dropped_future",
    "reward_micros",
    "reward_state",
    "reward_attempt",
)


def _insert_sql(paramstyle: str, table: str, columns: Sequence[str], *, ignore: bool = False) -> str:
    """A plain INSERT for the raw driver (both SQLite and PostgreSQL accept ON CONFLICT DO NOTHING)."""
    mark = "?" if paramstyle == "qmark" else "%s"
    cols = ", ".join(f'"{c}"' for c in columns)
    tail = " ON CONFLICT DO NOTHING" if ignore else ""
    return f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join([mark] * len(columns))}){tail}'


def _insert_readings_sql(paramstyle: str) -> str:
    return _insert_sql(paramstyle, t.readings.name, _READING_COLUMNS)


def _id_param(dialect: str) -> Callable[[int], Any]:
    """How an Id128 value is bound by the raw driver (what `Id128` does for Core statements)."""
    if dialect == "postgresql":
        return lambda v: uuid.UUID(int=v)
    return lambda v: v.to_bytes(16, "big")


@dataclass(frozen=True)
class GatewayConfig:
    grid: DistrictGrid = DEFAULT_GRID
    max_future_skew_ns: int = 5 * 1_000_000_000
    rewards: RewardConfig | None = None


@dataclass(frozen=True)
class BatchResult:
    batch_id: int
    device_id: str
    duplicate: bool  # already ingested earlier: nothing stored again, nothing paid again
    readings: int
    accepted: int
    dropped: int
    dropped_no_consent: int = 0
    dropped_future: int = 0
    reward_micros: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "batch_id": str(uuid.UUID(int=self.batch_id)),
            "device_id": self.device_id,
            "duplicate": self.duplicate,
            "readings": self.readings,
            "accepted": self.accepted,
            "dropped": self.dropped,
            "dropped_no_consent": self.dropped_no_consent,
            "dropped_future": self.dropped_future,
            "reward_micros": self.reward_micros,
        }


class PolicyCache:
    """The policy index plus the consent-state version each subject was loaded at."""

    def __init__(self) -> None:
        self.index = PolicyIndex()
        self.versions: dict[str, int] = {}
        self.lock = threading.Lock()
        self.reloads = 0

    def refresh(self, conn: sa.Connection, current: Mapping[str, int]) -> list[GrantSet]:
        """Reload every subject whose DB version differs from the cached one (call under `lock`).

        Returns the grant sets the reloaded subjects can now produce.
        """
        stale = [s for s, v in current.items() if self.versions.get(s) != v]
        if not stale:
            return []
        grants = load_grants(conn, stale)
        produced: list[GrantSet] = []
        for subject in stale:
            produced += self.index.replace_subject(subject, grants.get(subject, []))
            self.versions[subject] = current[subject]
        self.reloads += len(stale)
        return produced

    def warm(self, conn: sa.Connection) -> list[GrantSet]:
        """Load every subject (optional: subjects are otherwise loaded on first use)."""
        rows = conn.execute(sa.select(t.subjects.c.subject, t.subjects.c.version)).all()
        with self.lock:
            return self.refresh(conn, {r.subject: r.version for r in rows})


@dataclass
class _Counts:
    accepted: int = 0
    no_consent: int = 0
    future: int = 0


@dataclass
class _Prepared:
    signed: SignedBatch
    batch: Batch
    device: Device
    counts: dict[str, _Counts] = field(default_factory=dict)


class Gateway:
    """Ingest of signed reading batches. Thread-safe; one instance per process is enough."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock = system_clock_ns,
        config: GatewayConfig | None = None,
        payer: RewardPayer | None = None,
        cache: PolicyCache | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.config = config or GatewayConfig()
        self.payer = payer
        self.cache = cache or PolicyCache()
        self._keys: dict[bytes, VerifyKey] = {}
        # SQLite has one writer at a time; queue writers here instead of in SQLite's busy loop.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self._known_sets: set[int] = set()

    # -- edge checks --------------------------------------------------------------------------

    def _verify_key(self, raw: bytes) -> VerifyKey:
        key = self._keys.get(raw)
        if key is None:
            key = VerifyKey(raw)
            if len(self._keys) < 100_000:
                self._keys[raw] = key
        return key

    def _prepare(
        self, conn: sa.Connection, signed: Sequence[SignedBatch], device_id: str | None
    ) -> list[_Prepared]:
        parsed = [(s, s.parse_unverified()) for s in signed]
        devices = get_devices(conn, [b.device_id for _, b in parsed])
        out: list[_Prepared] = []
        for s, batch in parsed:
            device = devices.get(batch.device_id)
            if device is None or not device.active:
                raise BadSignature("unknown or revoked device")
            if device_id is not None and batch.device_id != device_id:
                raise BadSignature("the batch names another device than the authenticated one")
            s.verify_signature(self._verify_key(device.public_key))
            public = device.kind == DeviceKind.PUBLIC
            for reading in batch.readings:
                if (STREAMS[reading.stream] == NON_PERSONAL) != public:
                    raise InvalidBatch(
                        "public sensors send only public streams, personal devices only personal ones"
                    )
            out.append(_Prepared(s, batch, device))
        return out

    # -- ingest -------------------------------------------------------------------------------

    def ingest(self, signed: Sequence[SignedBatch], *, device_id: str | None = None) -> list[BatchResult]:
        """Verify and ingest batches in one transaction; any invalid batch refuses the whole call.

        `device_id` is the authenticated device (HTTP); every batch must be signed by it.
        """
        if not 0 < len(signed) <= MAX_BATCHES_PER_CALL:
            raise InvalidBatch(f"1..{MAX_BATCHES_PER_CALL} batches per call")
        # Edge checks (parse, device lookup, signature) need no write transaction.
        with read_connection(self.engine) as conn:
            prepared = self._prepare(conn, signed, device_id)
        with self._write_lock, self.engine.begin() as conn:
            if self.payer is not None:
                self.payer.flush_marks(conn)
            results, owed, new_sets = self._store(conn, prepared)
        self._known_sets.update(new_sets)  # only once they are committed
        if owed and self.payer is not None:
            self.payer.pay_owed(owed)
        return results

    def warm(self) -> int:
        """Load the policy index for every citizen and write their grant sets (server start-up)."""
        with self._write_lock, self.engine.begin() as conn:
            produced = {gs.set_id: gs for gs in self.cache.warm(conn) if gs.set_id not in self._known_sets}
            rows = [(gs.set_id, r) for gs in produced.values() for r in gs.record_ids]
            set_param = _id_param(conn.dialect.name)
            for part in chunks(rows, 10_000):
                conn.exec_driver_sql(
                    _insert_sql(
                        conn.dialect.paramstyle,
                        t.grant_set_members.name,
                        ("set_id", "record_id"),
                        ignore=True,
                    ),
                    [(set_param(a), set_param(b)) for a, b in part],
                )
        self._known_sets.update(produced)
        return len(self.cache.versions)

    def pay_pending(self) -> PaymentReport | None:
        """Retry rewards left pending (ledger unreachable, account closed, crash after commit)."""
        return None if self.payer is None else self.payer.pay(None)

    def _store(
        self, conn: sa.Connection, prepared: list[_Prepared]
    ) -> tuple[list[BatchResult], list[Owed], list[int]]:
        ids = [p.batch.batch_id for p in prepared]
        existing: dict[int, BatchResult] = {}
        for part in chunks(ids):
            for row in conn.execute(
                sa.select(
                    t.batches.c.batch_id,
                    t.batches.c.device_id,
                    t.batches.c.readings,
                    t.batches.c.accepted,
                    t.batches.c.dropped,
                ).where(t.batches.c.batch_id.in_(part))
            ):
                existing[row.batch_id] = BatchResult(
                    row.batch_id, row.device_id, True, row.readings, row.accepted, row.dropped
                )
        fresh: list[_Prepared] = []
        seen: set[int] = set()
        for p in prepared:
            if p.batch.batch_id in existing or p.batch.batch_id in seen:
                continue
            seen.add(p.batch.batch_id)
            fresh.append(p)

        owners = sorted({p.device.owner for p in fresh if p.device.owner is not None})
        versions = subject_versions(conn, owners, lock=True)
        for owner in owners:
            versions.setdefault(owner, -1)  # no consent state yet: nothing is permitted

        rows: list[tuple[Any, ...]] = []
        new_sets: dict[int, GrantSet] = {}
        set_param = _id_param(conn.dialect.name)
        with self.cache.lock:
            # Grant sets are written when a subject's consent state is (re)loaded, once per
            # change, rather than when a reading first needs one.
            for gs in self.cache.refresh(conn, versions):
                if gs.set_id not in self._known_sets:
                    new_sets[gs.set_id] = gs
            now = self.clock()
            horizon = now + self.config.max_future_skew_ns
            for p in fresh:
                self._decide(p, horizon, rows, new_sets, set_param)

        if new_sets:
            conn.exec_driver_sql(
                _insert_sql(
                    conn.dialect.paramstyle, t.grant_set_members.name, ("set_id", "record_id"), ignore=True
                ),
                [(set_param(s.set_id), set_param(r)) for s in new_sets.values() for r in s.record_ids],
            )
        if rows:
            if conn.dialect.name == "postgresql":
                # Reading ids are the agencies' cursor: take them and commit in one order, so a
                # reader never sees id n+1 committed before id n (SQLite serialises writers anyway).
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (READINGS_ORDER_LOCK,))
            # the hot insert: raw DBAPI executemany of prepared tuples (no per-row ORM/Core work)
            conn.exec_driver_sql(_insert_readings_sql(conn.dialect.paramstyle), rows)

        results: list[BatchResult] = []
        owed: list[Owed] = []
        batch_rows: list[tuple[Any, ...]] = []
        count_rows: list[tuple[Any, ...]] = []
        rewards = self.config.rewards
        for p in fresh:
            batch_param = set_param(p.batch.batch_id)
            accepted = sum(c.accepted for c in p.counts.values())
            no_consent = sum(c.no_consent for c in p.counts.values())
            future = sum(c.future for c in p.counts.values())
            reward_total = 0
            payable = rewards is not None and p.device.reward_account_id is not None
            for category, c in sorted(p.counts.items()):
                amount = rewards.amount(category, c.accepted) if rewards is not None and payable else 0
                reward_total += amount
                if amount and p.device.reward_account_id is not None:
                    owed.append(
                        Owed(p.batch.batch_id, category, c.accepted, amount, p.device.reward_account_id)
                    )
                count_rows.append(
                    (
                        batch_param,
                        category,
                        p.device.unit,
                        c.accepted,
                        c.no_consent,
                        c.future,
                        amount,
                        STATE_PENDING if amount > 0 else STATE_NONE,
                        0,
                    )
                )
            n = len(p.batch.readings)
            batch_rows.append((batch_param, p.device.device_id, now, n, accepted, n - accepted))
            results.append(
                BatchResult(
                    p.batch.batch_id,
                    p.device.device_id,
                    False,
                    n,
                    accepted,
                    n - accepted,
                    no_consent,
                    future,
                    reward_total,
                )
            )
        if batch_rows:
            conn.exec_driver_sql(
                _insert_sql(conn.dialect.paramstyle, t.batches.name, _BATCH_COLUMNS), batch_rows
            )
        if count_rows:
            conn.exec_driver_sql(
                _insert_sql(conn.dialect.paramstyle, t.batch_counts.name, _COUNT_COLUMNS), count_rows
            )
        by_id = {r.batch_id: r for r in results}
        ordered = [existing.get(p.batch.batch_id) or by_id[p.batch.batch_id] for p in prepared]
        return ordered, owed, list(new_sets)

    def _decide(
        self,
        p: _Prepared,
        horizon: int,
        rows: list[tuple[Any, ...]],
        new_sets: dict[int, GrantSet],
        set_param: Any,
    ) -> None:
        """Decide, minimise and collect the rows of one batch (under the cache lock)."""
        device = p.device
        unit = device.unit
        public = device.kind == DeviceKind.PUBLIC
        index = self.cache.index
        district_of = self.config.grid.district_of
        known = self._known_sets
        counts = p.counts
        streams = STREAMS
        tables: dict[str, tuple[list[int], list[GrantSet | None]] | None] = {}
        append = rows.append
        bisect_right = bisect.bisect_right
        db_sets: dict[int, Any] = {}
        for stream, ts, value, lat, lon in p.batch.readings:
            category = streams[stream]
            c = counts.get(category)
            if c is None:
                c = counts[category] = _Counts()
            if ts > horizon:
                c.future += 1
                continue
            minute = ts - ts % MINUTE_NS
            db_set: Any = None
            retain: int | None = None
            if not public:
                if category in tables:
                    table = tables[category]
                else:
                    decider = index.decider(unit, category)
                    table = tables[category] = None if decider is None else (decider.bounds, decider.sets)
                grant_set = None
                if table is not None:
                    bounds, sets = table
                    i = bisect_right(bounds, minute) - 1
                    if 0 <= i < len(sets):
                        grant_set = sets[i]
                if grant_set is None:
                    c.no_consent += 1
                    continue
                set_id = grant_set.set_id
                db_set = db_sets.get(set_id)
                if db_set is None:
                    if set_id not in known and set_id not in new_sets:
                        new_sets[set_id] = grant_set
                    db_set = db_sets[set_id] = set_param(set_id)
                retain = minute + grant_set.retention_ns
            c.accepted += 1
            append((unit, stream, category, district_of(lat, lon), minute, value, db_set, retain))
