"""Worker processes for the concurrent-charging test (importable under the spawn start method)."""

from __future__ import annotations

from analytics import Analytics, BudgetExceeded, BudgetPolicy, FrameSource
from analytics.data import DAY_NS
from analytics.synthetic import DISTRICTS, synthetic_day
from identity.sql import open_engine

DAY0 = 20_400 * DAY_NS


def submit_many(db_url: str, analyst: str, rows: list[int], rho: float, limit: float) -> list[str]:
    engine = open_engine(db_url)
    try:
        service = Analytics(
            engine,
            FrameSource(synthetic_day(DAY0, citizens=100, readings=2_000, seed=1)),
            DISTRICTS,
            BudgetPolicy(dataset_rho=limit, analyst_rho=limit),
        )
        out = []
        for r in rows:
            query = {
                "metric": "count",
                "stream": "vehicle.location",
                "group_by": ["district"],
                "start_ns": DAY0,
                "end_ns": DAY0 + DAY_NS,
                "bounds": {"rows_per_cell": r, "cells_per_unit": 3},
                "privacy": {"rho": rho},
            }
            try:
                service.submit(query, analyst)
                out.append("ok")
            except BudgetExceeded:
                out.append("refused")
        return out
    finally:
        engine.dispose()
