"""The privacy-budget accountant: the persistent source of truth for spent privacy loss.

Budgets are zCDP rho (composition is a sum) plus delta for private key release, per dataset and
per analyst, per period of the data (UTC day by default): a query charges every period its time
range touches. Check-and-charge runs inside the caller's transaction, which must be the same
transaction that stores the release; rows are locked with SELECT ... FOR UPDATE on PostgreSQL
(in a fixed order, so concurrent charges cannot deadlock) and SQLite transactions are
BEGIN IMMEDIATE (one writer at a time), so concurrent workers cannot overspend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from analytics.data import DAY_NS
from analytics.errors import BudgetExceeded
from analytics.tables import analyst_budgets, dataset_budgets

__all__ = [
    "DELTA_UNIT",
    "RHO_UNIT",
    "BudgetLine",
    "BudgetPolicy",
    "Cost",
    "budget_lines",
    "charge",
    "check",
    "cost_of",
    "lock",
    "period_label",
]

RHO_UNIT: Final = 1_000_000_000  # stored rho is in nano-units
DELTA_UNIT: Final = 1_000_000_000_000  # stored delta is in pico-units


@dataclass(frozen=True)
class BudgetPolicy:
    """Budget limits per period. `analysts` overrides the per-analyst rho limit by analyst id."""

    dataset_rho: float = 1.0
    analyst_rho: float = 0.25
    dataset_delta: float = 1e-6
    analyst_delta: float = 1e-7
    period_ns: int = DAY_NS
    analysts: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("dataset_rho", "analyst_rho", "dataset_delta", "analyst_delta"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite non-negative number")
        if self.period_ns <= 0 or (DAY_NS % self.period_ns and self.period_ns % DAY_NS):
            raise ValueError("period_ns must divide or be a multiple of one day")
        for analyst, rho in self.analysts.items():
            if not (math.isfinite(rho) and rho >= 0):
                raise ValueError(f"analyst budget for {analyst!r} must be a finite non-negative number")

    def analyst_rho_for(self, analyst: str) -> float:
        return float(self.analysts.get(analyst, self.analyst_rho))


@dataclass(frozen=True)
class Cost:
    """A query's charge in stored units (rounded up) for each period it touches."""

    rho_nano: int
    delta_pico: int
    periods: tuple[int, ...]

    @property
    def rho(self) -> float:
        return self.rho_nano / RHO_UNIT

    @property
    def delta(self) -> float:
        return self.delta_pico / DELTA_UNIT


def cost_of(rho: float, delta: float, periods: Sequence[int]) -> Cost:
    if not (math.isfinite(rho) and rho > 0) or not (math.isfinite(delta) and delta >= 0):
        raise ValueError("a charge needs rho > 0 and delta >= 0")
    if not periods:
        raise ValueError("a charge touches at least one period")
    return Cost(
        rho_nano=math.ceil(rho * RHO_UNIT),
        delta_pico=math.ceil(delta * DELTA_UNIT),
        periods=tuple(sorted(set(periods))),
    )


@dataclass(frozen=True)
class BudgetLine:
    """One budget (dataset-wide or one analyst's) for one period."""

    scope: str  # "dataset" | "analyst"
    dataset: str
    analyst: str | None
    period_start_ns: int
    limit_rho_nano: int
    spent_rho_nano: int
    limit_delta_pico: int
    spent_delta_pico: int

    @property
    def remaining_rho(self) -> float:
        return (self.limit_rho_nano - self.spent_rho_nano) / RHO_UNIT

    @property
    def remaining_delta(self) -> float:
        return (self.limit_delta_pico - self.spent_delta_pico) / DELTA_UNIT

    @property
    def label(self) -> str:
        who = "dataset" if self.analyst is None else f"analyst {self.analyst}"
        return f"{who} {self.dataset} {period_label(self.period_start_ns)}"


def period_label(period_start_ns: int) -> str:
    import datetime as _dt

    moment = _dt.datetime.fromtimestamp(period_start_ns / 1e9, tz=_dt.UTC)
    return (
        moment.strftime("%Y-%m-%d") if period_start_ns % DAY_NS == 0 else moment.strftime("%Y-%m-%dT%H:%MZ")
    )


def _limits(policy: BudgetPolicy, analyst: str | None) -> tuple[int, int]:
    if analyst is None:
        return math.floor(policy.dataset_rho * RHO_UNIT), math.floor(policy.dataset_delta * DELTA_UNIT)
    return math.floor(policy.analyst_rho_for(analyst) * RHO_UNIT), math.floor(
        policy.analyst_delta * DELTA_UNIT
    )


def _ensure_rows(
    conn: sa.Connection, policy: BudgetPolicy, dataset: str, analyst: str, periods: Sequence[int]
) -> None:
    """Create missing budget rows with the policy's limits (existing rows are left as they are)."""
    dialect = conn.dialect.name
    for table, who in ((dataset_budgets, None), (analyst_budgets, analyst)):
        rho_limit, delta_limit = _limits(policy, who)
        rows = [
            {
                "dataset": dataset,
                "period_start_ns": p,
                "limit_rho_nano": rho_limit,
                "spent_rho_nano": 0,
                "limit_delta_pico": delta_limit,
                "spent_delta_pico": 0,
                **({} if who is None else {"analyst": who}),
            }
            for p in periods
        ]
        if dialect == "postgresql":
            conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
        elif dialect == "sqlite":
            conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
        else:  # pragma: no cover - only SQLite and PostgreSQL are supported
            raise RuntimeError(f"unsupported database dialect {dialect}")


def _lines(
    conn: sa.Connection, dataset: str, analyst: str, periods: Sequence[int], *, lock: bool
) -> list[BudgetLine]:
    out: list[BudgetLine] = []
    for table, who in ((dataset_budgets, None), (analyst_budgets, analyst)):
        stmt = sa.select(table).where(table.c.dataset == dataset, table.c.period_start_ns.in_(list(periods)))
        if who is not None:
            stmt = stmt.where(table.c.analyst == who)
        stmt = stmt.order_by(table.c.period_start_ns)
        if lock:
            stmt = stmt.with_for_update()
        for row in conn.execute(stmt).mappings():
            out.append(
                BudgetLine(
                    scope="dataset" if who is None else "analyst",
                    dataset=dataset,
                    analyst=who,
                    period_start_ns=int(row["period_start_ns"]),
                    limit_rho_nano=int(row["limit_rho_nano"]),
                    spent_rho_nano=int(row["spent_rho_nano"]),
                    limit_delta_pico=int(row["limit_delta_pico"]),
                    spent_delta_pico=int(row["spent_delta_pico"]),
                )
            )
    return out


def budget_lines(
    conn: sa.Connection, policy: BudgetPolicy, dataset: str, analyst: str, periods: Sequence[int]
) -> list[BudgetLine]:
    """Current dataset and analyst budgets for the periods (read-only; untouched periods show full)."""
    found = {(b.scope, b.period_start_ns): b for b in _lines(conn, dataset, analyst, periods, lock=False)}
    out: list[BudgetLine] = []
    for scope, who in (("dataset", None), ("analyst", analyst)):
        rho_limit, delta_limit = _limits(policy, who)
        for p in sorted(set(periods)):
            out.append(
                found.get(
                    (scope, p),
                    BudgetLine(scope, dataset, who, p, rho_limit, 0, delta_limit, 0),
                )
            )
    return out


def _refusal(lines: Sequence[BudgetLine], cost: Cost) -> BudgetExceeded | None:
    short = [
        b
        for b in lines
        if b.spent_rho_nano + cost.rho_nano > b.limit_rho_nano
        or b.spent_delta_pico + cost.delta_pico > b.limit_delta_pico
    ]
    if not short:
        return None
    remaining = {b.label: b.remaining_rho for b in lines}
    worst = min(short, key=lambda b: b.remaining_rho)
    message = (
        f"privacy budget exceeded: the query needs rho={cost.rho:g}"
        + (f" and delta={cost.delta:g}" if cost.delta_pico else "")
        + f" but {worst.label} has rho={worst.remaining_rho:g}"
        + (f", delta={worst.remaining_delta:g}" if cost.delta_pico else "")
        + " remaining; nothing was charged"
    )
    return BudgetExceeded(message, requested_rho=cost.rho, remaining_rho=remaining)


def check(conn: sa.Connection, policy: BudgetPolicy, dataset: str, analyst: str, cost: Cost) -> None:
    """Raise BudgetExceeded if `cost` does not fit now (advisory: `charge` decides under lock)."""
    refusal = _refusal(budget_lines(conn, policy, dataset, analyst, cost.periods), cost)
    if refusal is not None:
        raise refusal


def lock(
    conn: sa.Connection, policy: BudgetPolicy, dataset: str, analyst: str, periods: Sequence[int]
) -> list[BudgetLine]:
    """Create (if missing) and lock the dataset and analyst budget rows of `periods`, in order."""
    if not conn.in_transaction():
        raise RuntimeError("budgets are locked inside the transaction that stores the release")
    ordered = sorted(set(periods))
    _ensure_rows(conn, policy, dataset, analyst, ordered)
    lines = _lines(conn, dataset, analyst, ordered, lock=True)
    if len(lines) != 2 * len(ordered):
        raise RuntimeError("budget rows missing after creation")
    return lines


def charge(
    conn: sa.Connection, policy: BudgetPolicy, dataset: str, analyst: str, cost: Cost
) -> list[BudgetLine]:
    """Lock, check and charge every budget `cost` touches, inside the caller's transaction.

    Raises BudgetExceeded (having changed nothing) when any budget would be overspent; the
    caller's transaction must then roll back. Returns the budgets after the charge.
    """
    lines = lock(conn, policy, dataset, analyst, cost.periods)
    refusal = _refusal(lines, cost)
    if refusal is not None:
        raise refusal
    for table, who in ((dataset_budgets, None), (analyst_budgets, analyst)):
        stmt = (
            sa.update(table)
            .where(table.c.dataset == dataset, table.c.period_start_ns.in_(list(cost.periods)))
            .values(
                spent_rho_nano=table.c.spent_rho_nano + cost.rho_nano,
                spent_delta_pico=table.c.spent_delta_pico + cost.delta_pico,
            )
        )
        if who is not None:
            stmt = stmt.where(table.c.analyst == who)
        updated = conn.execute(stmt).rowcount
        if updated != len(cost.periods):
            raise RuntimeError("budget charge touched an unexpected number of rows")
    return [
        BudgetLine(
            b.scope,
            b.dataset,
            b.analyst,
            b.period_start_ns,
            b.limit_rho_nano,
            b.spent_rho_nano + cost.rho_nano,
            b.limit_delta_pico,
            b.spent_delta_pico + cost.delta_pico,
        )
        for b in lines
    ]
