"""Snapshots kept between queries: shared while the data cannot have changed, reloaded otherwise."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import polars as pl
import pytest
import sqlalchemy as sa

from analytics import Analytics, BudgetPolicy, FrameSource, create_schema
from analytics.data import DAY_NS
from analytics.sources import consent_change_marker
from analytics.standard import publish_day
from analytics.synthetic import DISTRICTS

from .conftest import DAY0, DAY1, count_query

NOW = DAY1 + 3_600_000_000_000


@dataclass
class CountingSource:
    """A FrameSource that counts loads and whose change marker the test controls."""

    frame: pl.DataFrame
    marker_value: Hashable | None = 1
    loads: list[tuple[tuple[str, ...] | None, int, int]] = field(default_factory=list)

    def load(self, *, streams: Sequence[str] | None, start_ns: int, end_ns: int) -> pl.DataFrame:
        self.loads.append((None if streams is None else tuple(streams), start_ns, end_ns))
        return FrameSource(self.frame).load(streams=streams, start_ns=start_ns, end_ns=end_ns)

    def marker(self, start_ns: int, end_ns: int) -> Hashable | None:
        return self.marker_value


@dataclass
class Clock:
    now_ns: int = NOW

    def __call__(self) -> int:
        return self.now_ns


def _service(engine: sa.Engine, source: CountingSource, clock: Clock, ttl_s: float = 60.0) -> Analytics:
    create_schema(engine)
    return Analytics(
        engine,
        source,
        DISTRICTS,
        BudgetPolicy(dataset_rho=5.0, analyst_rho=5.0),
        clock=clock,
        snapshot_ttl_s=ttl_s,
    )


def test_dashboard_and_adhoc_queries_share_one_load(engine: sa.Engine, city_day: pl.DataFrame) -> None:
    source, clock = CountingSource(city_day), Clock()
    service = _service(engine, source, clock)
    publish_day(service, DAY0)
    assert len(source.loads) == 1  # the dashboard's streams for the day, once
    energy = {
        "metric": "mean",
        "stream": "home.energy_kwh",
        "group_by": ["district"],
        "start_ns": DAY0,
        "end_ns": DAY0 + 6 * 3_600_000_000_000,
        "bounds": {"rows_per_cell": 6, "cells_per_unit": 1, "value_min": 0.0, "value_max": 5.0},
        "privacy": {"rho": 0.01},
    }
    first = service.submit(energy, "a1")
    assert not first.reused and len(source.loads) == 1  # inside the kept day snapshot
    service.submit(count_query(rho=0.01, rows_per_cell=2), "a1")
    assert len(source.loads) == 1


def test_a_changed_marker_or_an_expired_snapshot_reloads(engine: sa.Engine, city_day: pl.DataFrame) -> None:
    source, clock = CountingSource(city_day), Clock()
    service = _service(engine, source, clock, ttl_s=60.0)
    service.submit(count_query(rho=0.01, rows_per_cell=1), "a1")
    service.submit(count_query(rho=0.01, rows_per_cell=2), "a1")
    assert len(source.loads) == 1
    source.marker_value = 2  # e.g. a consent withdrawal or a late reading
    service.submit(count_query(rho=0.01, rows_per_cell=3), "a1")
    assert len(source.loads) == 2
    clock.now_ns += 61 * 1_000_000_000  # consent expiry and retention follow the clock
    service.submit(count_query(rho=0.01, rows_per_cell=4), "a1")
    assert len(source.loads) == 3
    service.submit(count_query(rho=0.01, rows_per_cell=5), "a1")
    assert len(source.loads) == 3


def test_a_source_without_marker_loads_for_every_query(engine: sa.Engine, city_day: pl.DataFrame) -> None:
    source, clock = CountingSource(city_day, marker_value=None), Clock()
    service = _service(engine, source, clock)
    service.submit(count_query(rho=0.01, rows_per_cell=1), "a1")
    service.submit(count_query(rho=0.01, rows_per_cell=2), "a1")
    assert len(source.loads) == 2


def test_a_replaced_frame_is_new_data(engine: sa.Engine, city_day: pl.DataFrame) -> None:
    source = FrameSource(city_day)
    before = source.marker(DAY0, DAY1)
    assert source.marker(DAY0, DAY1) == before
    source.frame = city_day.clone()
    assert source.marker(DAY0, DAY1) != before


def test_consent_change_marker_moves_with_new_readings(engine: sa.Engine) -> None:
    from consent import tables as ct

    ct.create_schema(engine)
    with engine.connect() as conn:
        before = consent_change_marker(conn, DAY0, DAY1)
        assert consent_change_marker(conn, DAY0, DAY1) == before
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ct.readings),
            [
                {
                    "unit": "sensor-1",
                    "stream": "city.air_pm25",
                    "category": "air",
                    "district": "north",
                    "ts_ns": DAY0,
                    "value": 1.0,
                    "grant_set_id": None,
                    "retain_until_ns": None,
                }
            ],
        )
    with engine.connect() as conn:
        assert consent_change_marker(conn, DAY0, DAY1) != before


def test_snapshot_ttl_is_bounded(engine: sa.Engine, city_day: pl.DataFrame) -> None:
    with pytest.raises(ValueError):
        _service(engine, CountingSource(city_day), Clock(), ttl_s=-1.0)
    assert DAY1 - DAY0 == DAY_NS
