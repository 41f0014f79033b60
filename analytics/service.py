"""The analytics service API the routers call: submit a query, read releases and budgets.

Submitting runs: canonical hash -> re-serve an identical earlier release at no cost -> advisory
budget check -> load and measure with OpenDP -> one transaction that locks the budgets, re-checks
for an identical release, charges, and stores the release. A refused query changes nothing; a
measured result that is not stored is never shown to anyone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from analytics.accountant import (
    BudgetLine,
    BudgetPolicy,
    budget_lines,
    charge,
    check,
    cost_of,
    lock,
    period_label,
)
from analytics.bounding import bounded_snapshot
from analytics.data import Snapshot, snapshot_of
from analytics.errors import InvalidQuery
from analytics.measurements import CONVERSION_DELTA, epsilon_of_rho, measure
from analytics.queries import LIMITS, Limits, Query, parse_query
from analytics.releases import (
    Release,
    build_release,
    find_by_hash,
    get_release,
    list_releases,
    new_release_id,
    store_release,
)
from analytics.snapshots import MarkedSource, SnapshotCache
from analytics.sources import ReadingSource
from identity.sql import Clock, system_clock_ns

__all__ = ["Analytics", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    release: Release
    reused: bool  # True: an identical earlier release, served at no privacy cost


def _read(engine: sa.Engine) -> sa.Connection:
    return engine.connect().execution_options(sqlite_begin="DEFERRED")


@dataclass
class Analytics:
    engine: sa.Engine
    source: ReadingSource
    districts: Sequence[str]
    policy: BudgetPolicy = field(default_factory=BudgetPolicy)
    dataset: str = "readings"
    clock: Clock = system_clock_ns
    limits: Limits = LIMITS
    # How long a loaded snapshot may serve later queries (only sources with a change marker).
    snapshot_ttl_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.snapshot_ttl_s <= 86_400.0:
            raise ValueError("snapshot_ttl_s must be in [0, 86400]")
        self._snapshots = SnapshotCache(int(self.snapshot_ttl_s * 1e9))
        if not self.districts or len(set(self.districts)) != len(self.districts):
            raise ValueError("districts must be a non-empty list of distinct names")
        if not 1 <= len(self.dataset) <= 64:
            raise ValueError("dataset name must have 1..64 characters")

    # -- queries -------------------------------------------------------------------------------

    def parse(self, raw: Mapping[str, Any]) -> Query:
        return parse_query(raw, self.limits)

    def submit(
        self, query: Query | Mapping[str, Any], analyst: str, *, snapshot: Snapshot | None = None
    ) -> Outcome:
        """Release `query` for `analyst` (or re-serve an identical release); raises BudgetExceeded."""
        if not isinstance(query, Query):
            query = self.parse(query)
        if not 1 <= len(analyst) <= 128:
            raise InvalidQuery("analyst id must have 1..128 characters")
        if query.end_ns > self.clock():
            # A release is a snapshot that identical queries get back; it must cover settled data.
            raise InvalidQuery("the time range must lie in the past (end_ns <= now)")
        query_hash = query.canonical_hash(self.dataset)
        cost = cost_of(query.rho, query.delta, query.periods(self.policy.period_ns))
        with _read(self.engine) as conn:
            existing = find_by_hash(conn, query_hash)
            if existing is not None:
                return Outcome(existing, reused=True)
            check(conn, self.policy, self.dataset, analyst, cost)
        owned = snapshot is None
        if snapshot is None:
            snapshot, owned = self._snapshot([query.stream], query.start_ns, query.end_ns)
        try:
            measured = measure(bounded_snapshot(snapshot, query), query, self.districts)
        finally:
            if owned:
                snapshot.close()
        if measured.rho > query.rho or measured.delta > query.delta:
            raise RuntimeError("measured privacy loss exceeds the query's")
        _, release_id = new_release_id()
        created_ns = self.clock()
        body = build_release(
            release_id=release_id,
            dataset=self.dataset,
            query=query,
            query_hash=query_hash,
            analyst=analyst,
            created_ns=created_ns,
            measured=measured,
            cost=cost,
        )
        release = Release(release_id, self.dataset, query_hash, analyst, created_ns, body)
        try:
            with self.engine.begin() as conn:
                # Lock first, then look for an identical release committed meanwhile.
                lock(conn, self.policy, self.dataset, analyst, cost.periods)
                existing = find_by_hash(conn, query_hash)
                if existing is not None:
                    return Outcome(existing, reused=True)
                charge(conn, self.policy, self.dataset, analyst, cost)
                store_release(conn, release, cost)
        except sa.exc.IntegrityError:
            with _read(self.engine) as conn:
                existing = find_by_hash(conn, query_hash)
            if existing is None:
                raise
            return Outcome(existing, reused=True)
        return Outcome(release, reused=False)

    def submit_many(
        self, queries: Sequence[Query], analyst: str, *, start_ns: int, end_ns: int
    ) -> list[Outcome]:
        """Submit several queries over one shared snapshot of their streams in [start_ns, end_ns)."""
        pending: list[Query] = []
        with _read(self.engine) as conn:
            for q in queries:
                if q.start_ns < start_ns or q.end_ns > end_ns:
                    raise InvalidQuery("query outside the shared snapshot's range")
                if find_by_hash(conn, q.canonical_hash(self.dataset)) is None:
                    pending.append(q)
            if pending:
                # All or nothing where it can be known up front: refuse before any release is made.
                periods = sorted({p for q in pending for p in q.periods(self.policy.period_ns)})
                total = cost_of(sum(q.rho for q in pending), sum(q.delta for q in pending), periods)
                check(conn, self.policy, self.dataset, analyst, total)
        if not pending:
            return [self.submit(q, analyst) for q in queries]
        streams = sorted({q.stream for q in pending})
        snap, owned = self._snapshot(streams, start_ns, end_ns)
        try:
            return [self.submit(q, analyst, snapshot=snap) for q in queries]
        finally:
            if owned:
                snap.close()

    @contextlib.contextmanager
    def snapshot(self, streams: Sequence[str], start_ns: int, end_ns: int) -> Iterator[Snapshot]:
        """The snapshot queries over these streams and range use (kept or new; for audits and benchmarks)."""
        snap, owned = self._snapshot(streams, start_ns, end_ns)
        try:
            yield snap
        finally:
            if owned:
                snap.close()

    def _snapshot(self, streams: Sequence[str], start_ns: int, end_ns: int) -> tuple[Snapshot, bool]:
        """A snapshot of the streams in the range: a kept one if still valid (not owned), else new.

        Returns (snapshot, owned); the caller closes an owned snapshot.
        """
        marker = self.source.marker(start_ns, end_ns) if isinstance(self.source, MarkedSource) else None
        if marker is not None:
            now_ns = self.clock()
            kept = self._snapshots.get(streams, start_ns, end_ns, marker, now_ns)
            if kept is not None:
                return kept, False
        snap = snapshot_of(self.source.load(streams=streams, start_ns=start_ns, end_ns=end_ns))
        if marker is None:
            return snap, True
        self._snapshots.put(snap, streams, start_ns, end_ns, marker, now_ns)
        return snap, False

    # -- reading -------------------------------------------------------------------------------

    def release(self, release_id: str) -> Release:
        with _read(self.engine) as conn:
            return get_release(conn, release_id)

    def find(self, query: Query) -> Release | None:
        with _read(self.engine) as conn:
            return find_by_hash(conn, query.canonical_hash(self.dataset))

    def releases(
        self, *, analyst: str | None = None, limit: int = 100, before_ns: int | None = None
    ) -> list[Release]:
        with _read(self.engine) as conn:
            return list_releases(conn, analyst=analyst, limit=limit, before_ns=before_ns)

    def budget(self, analyst: str, period_start_ns: int | None = None) -> dict[str, Any]:
        """The dataset's and the analyst's budgets for one period (default: the current one)."""
        if period_start_ns is None:
            period_start_ns = self.clock() // self.policy.period_ns * self.policy.period_ns
        if period_start_ns % self.policy.period_ns:
            raise InvalidQuery("period start must be aligned to the budget period")
        with _read(self.engine) as conn:
            lines = budget_lines(conn, self.policy, self.dataset, analyst, [period_start_ns])
        return {
            "dataset": self.dataset,
            "period": period_label(period_start_ns),
            "period_start_ns": period_start_ns,
            "period_length_s": self.policy.period_ns // 1_000_000_000,
            "unit": "zCDP rho (composition: sum); epsilon at delta by OpenDP's conversion",
            "epsilon_delta": CONVERSION_DELTA,
            "dataset_budget": _line_json(next(b for b in lines if b.scope == "dataset")),
            "analyst_budget": {
                "analyst": analyst,
                **_line_json(next(b for b in lines if b.scope == "analyst")),
            },
        }


def _line_json(b: BudgetLine) -> dict[str, Any]:
    return {
        "limit_rho": b.limit_rho_nano / 1e9,
        "spent_rho": b.spent_rho_nano / 1e9,
        "remaining_rho": b.remaining_rho,
        "remaining_epsilon": epsilon_of_rho(max(b.remaining_rho, 0.0), CONVERSION_DELTA),
        "limit_delta": b.limit_delta_pico / 1e12,
        "spent_delta": b.spent_delta_pico / 1e12,
        "remaining_delta": b.remaining_delta,
    }
