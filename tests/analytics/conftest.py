"""Fixtures for analytics tests: a small synthetic city day and an Analytics service on `engine`."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
import pytest
import sqlalchemy as sa

from analytics import Analytics, BudgetPolicy, FrameSource, create_schema
from analytics.data import DAY_NS
from analytics.synthetic import DISTRICTS, synthetic_day

DAY0 = 20_400 * DAY_NS  # 2025-11-08T00:00Z
DAY1 = DAY0 + DAY_NS


@pytest.fixture(scope="session")
def city_day() -> pl.DataFrame:
    return synthetic_day(DAY0, citizens=400, readings=20_000, seed=7)


@pytest.fixture
def make_analytics(engine: sa.Engine, city_day: pl.DataFrame) -> Callable[..., Analytics]:
    create_schema(engine)

    def make(policy: BudgetPolicy | None = None, frame: pl.DataFrame | None = None) -> Analytics:
        return Analytics(
            engine,
            FrameSource(city_day if frame is None else frame),
            DISTRICTS,
            policy or BudgetPolicy(),
        )

    return make


def count_query(
    rho: float = 0.05, rows_per_cell: int = 3, day: int = DAY0, **extra: object
) -> dict[str, object]:
    return {
        "metric": "count",
        "stream": "vehicle.location",
        "group_by": ["district"],
        "start_ns": day,
        "end_ns": day + DAY_NS,
        "bounds": {"rows_per_cell": rows_per_cell, "cells_per_unit": 3},
        "privacy": {"rho": rho},
        **extra,
    }
