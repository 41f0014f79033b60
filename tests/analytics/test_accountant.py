"""The budget accountant on SQLite and PostgreSQL: composition, refusal, re-serving, restart, concurrency."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from analytics import Analytics, BudgetExceeded, BudgetPolicy, create_schema, epsilon_of_rho
from analytics.accountant import RHO_UNIT, cost_of
from analytics.tables import TABLES, analyst_budgets, charges, dataset_budgets, releases
from identity.sql import open_engine

from . import workers
from .conftest import DAY0, DAY1, count_query


def _state(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in TABLES}


def _spent(engine: sa.Engine, table: sa.Table = dataset_budgets) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.sum(table.c.spent_rho_nano), 0))).scalar_one()
        )


def test_composition_is_the_sum_of_rho(make_analytics: Callable[..., Analytics], engine: sa.Engine) -> None:
    service = make_analytics(BudgetPolicy(dataset_rho=1.0, analyst_rho=0.5))
    for rho, rows in ((0.1, 1), (0.2, 2), (0.05, 3)):
        service.submit(count_query(rho=rho, rows_per_cell=rows), "alice")
    assert _spent(engine) == round(0.35 * RHO_UNIT)
    assert _spent(engine, analyst_budgets) == round(0.35 * RHO_UNIT)
    budget = service.budget("alice", DAY0)
    assert budget["dataset_budget"]["spent_rho"] == pytest.approx(0.35)
    assert budget["analyst_budget"]["remaining_rho"] == pytest.approx(0.5 - 0.35)
    # remaining epsilon is OpenDP's conversion of the remaining rho
    assert budget["dataset_budget"]["remaining_epsilon"] == pytest.approx(epsilon_of_rho(1.0 - 0.35))
    # another day's budget is untouched
    assert service.budget("alice", DAY1)["dataset_budget"]["spent_rho"] == 0.0


def test_charges_are_rounded_up_never_down() -> None:
    cost = cost_of(1e-10 + 0.1, 0.0, [DAY0])
    assert cost.rho_nano == 100_000_001
    assert cost_of(0.1, 1e-13, [DAY0]).delta_pico == 1


def test_over_budget_refusal_changes_nothing(
    make_analytics: Callable[..., Analytics], engine: sa.Engine
) -> None:
    service = make_analytics(BudgetPolicy(dataset_rho=1.0, analyst_rho=0.15))
    service.submit(count_query(rho=0.1), "alice")
    before = _state(engine)
    with pytest.raises(BudgetExceeded) as info:
        service.submit(count_query(rho=0.1, rows_per_cell=5), "alice")
    assert "rho=0.05 remaining" in str(info.value) and "nothing was charged" in str(info.value)
    assert info.value.requested_rho == pytest.approx(0.1)
    assert min(info.value.remaining_rho.values()) == pytest.approx(0.05)
    assert _state(engine) == before
    # another analyst still has budget
    assert not service.submit(count_query(rho=0.1, rows_per_cell=5), "bob").reused


def test_dataset_budget_caps_all_analysts_together(make_analytics: Callable[..., Analytics]) -> None:
    service = make_analytics(BudgetPolicy(dataset_rho=0.3, analyst_rho=0.2))
    service.submit(count_query(rho=0.2, rows_per_cell=1), "alice")
    with pytest.raises(BudgetExceeded, match="dataset"):
        service.submit(count_query(rho=0.15, rows_per_cell=2), "bob")
    service.submit(count_query(rho=0.1, rows_per_cell=2), "bob")


def test_identical_query_is_reserved_at_no_cost(
    make_analytics: Callable[..., Analytics], engine: sa.Engine
) -> None:
    service = make_analytics()
    first = service.submit(count_query(), "alice")
    spent = _state(engine)
    again = service.submit(count_query(), "alice")
    other = service.submit(dict(reversed(list(count_query().items()))), "bob")
    assert not first.reused and again.reused and other.reused
    assert again.release.id == first.release.id == other.release.id
    assert again.release.body == first.release.body
    assert _state(engine) == spent


def test_budget_survives_restart(make_analytics: Callable[..., Analytics], db_url: str) -> None:
    service = make_analytics(BudgetPolicy(dataset_rho=1.0, analyst_rho=0.2))
    first = service.submit(count_query(rho=0.15), "alice")
    service.engine.dispose()

    engine = open_engine(db_url)
    try:
        restarted = Analytics(
            engine, service.source, service.districts, BudgetPolicy(dataset_rho=1.0, analyst_rho=0.2)
        )
        assert restarted.budget("alice", DAY0)["analyst_budget"]["spent_rho"] == pytest.approx(0.15)
        assert restarted.submit(count_query(rho=0.15), "alice").release.id == first.release.id
        with pytest.raises(BudgetExceeded):
            restarted.submit(count_query(rho=0.1, rows_per_cell=9), "alice")
        assert restarted.release(first.release.id).body == first.release.body
    finally:
        engine.dispose()


def test_a_multi_day_query_charges_every_day(
    make_analytics: Callable[..., Analytics], engine: sa.Engine
) -> None:
    service = make_analytics()
    raw = count_query(rho=0.1) | {"end_ns": DAY1 + 86_400_000_000_000}
    outcome = service.submit(raw, "alice")
    assert outcome.release.body["privacy"]["periods"] == ["2025-11-08", "2025-11-09"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(charges)).scalar_one() == 2
    assert service.budget("alice", DAY1)["dataset_budget"]["spent_rho"] == pytest.approx(0.1)


def test_concurrent_workers_cannot_overspend(db_url: str) -> None:
    engine = open_engine(db_url)
    create_schema(engine)
    processes, per_process, rho, limit = 4, 6, 0.1, 1.0
    jobs = [
        (db_url, f"analyst-{p}", [p * per_process + i + 1 for i in range(per_process)], rho, limit)
        for p in range(processes)
    ]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.starmap(workers.submit_many, jobs)
    outcomes = [o for r in results for o in r]
    try:
        assert outcomes.count("ok") == 10 and outcomes.count("refused") == processes * per_process - 10
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.sum(releases.c.rho_nano), sa.func.count())).one()
            limit_row = conn.execute(sa.select(dataset_budgets)).mappings().one()
        assert stored[1] == 10 and int(stored[0]) == limit_row["spent_rho_nano"] == round(limit * RHO_UNIT)
        assert limit_row["spent_rho_nano"] <= limit_row["limit_rho_nano"]
    finally:
        engine.dispose()


def test_queries_over_unsettled_time_are_refused(make_analytics: Callable[..., Analytics]) -> None:
    import time

    from analytics import InvalidQuery

    service = make_analytics()
    today = time.time_ns() // 86_400_000_000_000 * 86_400_000_000_000
    with pytest.raises(InvalidQuery, match="past"):
        service.submit(count_query(day=today), "alice")
