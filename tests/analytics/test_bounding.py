"""Contribution bounds applied before OpenDP: they hold on every input, and the bounds declared to
OpenDP give exactly the privacy loss OpenDP's own truncation gives for the same bounds."""

from __future__ import annotations

from typing import Any

import opendp.prelude as dp
import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import Analytics, BudgetPolicy, FrameSource, create_schema
from analytics.bounding import (
    BoundedFrame,
    bound_rows,
    bounded_snapshot,
    bounding_key,
    cell_columns,
)
from analytics.data import DAY_NS, HOUR_NS, MAX_SNAPSHOT_ROWS, snapshot_of
from analytics.errors import InvalidQuery
from analytics.measurements import (
    MAX_DISTRICTS,
    _aggregations,
    _frame_domain,
    _plan,
    _privacy_unit,
    measure,
    public_keys,
)
from analytics.queries import Query, parse_query
from analytics.synthetic import DISTRICTS

from .conftest import DAY0

GROUPINGS: list[list[str]] = [[], ["district"], ["hour"], ["district", "hour"], ["day"], ["district", "day"]]


def _query(metric: str, group_by: list[str], rows_per_cell: int, cells_per_unit: int, **extra: Any) -> Query:
    raw: dict[str, Any] = {
        "metric": metric,
        "stream": "s.x",
        "group_by": group_by,
        "start_ns": DAY0,
        "end_ns": DAY0 + DAY_NS,
        "bounds": {
            "rows_per_cell": rows_per_cell,
            "cells_per_unit": cells_per_unit,
            "value_min": 0.0,
            "value_max": 10.0,
        },
        "privacy": {"rho": 0.05},
    }
    raw.update(extra)
    return parse_query(raw)


readings = st.lists(
    st.tuples(
        st.integers(0, 7),  # unit
        st.sampled_from(["north", "south", "east"]),
        st.integers(-3, 27),  # hour relative to the day (some outside the range)
        st.floats(-5.0, 15.0, allow_nan=False),
    ),
    max_size=300,
)


def _frame(rows: list[tuple[int, str, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "unit": [f"u{u}" for u, _, _, _ in rows],
            "stream": ["s.x"] * len(rows),
            "district": [d for _, d, _, _ in rows],
            "ts_ns": [DAY0 + h * HOUR_NS + 60_000_000_000 for _, _, h, _ in rows],
            "value": [v for _, _, _, v in rows],
        },
        schema={
            "unit": pl.String,
            "stream": pl.String,
            "district": pl.String,
            "ts_ns": pl.Int64,
            "value": pl.Float64,
        },
    )


@settings(max_examples=60, deadline=None)
@given(
    rows=readings,
    group_by=st.sampled_from(GROUPINGS),
    histogram=st.booleans(),
    rows_per_cell=st.integers(1, 4),
    cells_per_unit=st.integers(1, 4),
    from_snapshot=st.booleans(),
)
def test_bounded_rows_never_exceed_the_bounds_and_keep_all_they_may(
    rows: list[tuple[int, str, int, float]],
    group_by: list[str],
    histogram: bool,
    rows_per_cell: int,
    cells_per_unit: int,
    from_snapshot: bool,
) -> None:
    extra: dict[str, Any] = {"bins": [0.0, 2.5, 5.0, 10.0]} if histogram else {}
    query = _query("histogram" if histogram else "count", group_by, rows_per_cell, cells_per_unit, **extra)
    key = bounding_key(query)
    cells = list(cell_columns(query))
    with snapshot_of(_frame(rows)) as snap:
        snap_rows = snap.scan("s.x").collect()
        kept = bound_rows(snap.scan("s.x"), key, shuffle=not from_snapshot)
    c = key.cells_per_unit
    # Every kept row lies in the range; no unit has more than rows_per_cell rows in a cell ...
    assert kept.filter((pl.col("ts_ns") < DAY0) | (pl.col("ts_ns") >= DAY0 + DAY_NS)).height == 0
    per_cell = kept.group_by("unit", *cells).len()
    assert per_cell.height == 0 or int(per_cell["len"].max()) <= rows_per_cell  # type: ignore[arg-type]
    # ... nor more than cells_per_unit cells.
    per_unit = per_cell.group_by("unit").len()
    assert per_unit.height == 0 or int(per_unit["len"].max()) <= c  # type: ignore[arg-type]
    # Nothing more is dropped than the bounds require: per unit, the lowest min(c, available)
    # cells, each with min(rows_per_cell, available) rows.
    inside = snap_rows.filter((pl.col("ts_ns") >= DAY0) & (pl.col("ts_ns") < DAY0 + DAY_NS))
    if histogram:
        inside = inside.with_columns(
            pl.col("value")
            .clip(0.0, 10.0)
            .cut([2.5, 5.0], labels=["[0, 2.5)", "[2.5, 5)", "[5, 10)"], left_closed=True)
            .cast(pl.String)
            .alias("bin")
        )
    available = inside.group_by("unit", *cells).len().rows(named=True)
    expected: dict[tuple[Any, ...], int] = {}
    by_unit: dict[Any, list[dict[str, Any]]] = {}
    for r in available:
        by_unit.setdefault(r["unit"], []).append(r)
    bin_order = {label: i for i, label in enumerate(["[0, 2.5)", "[2.5, 5)", "[5, 10)"])}

    def order(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(bin_order[r[col]] if col == "bin" else r[col] for col in cells)

    for unit, unit_cells in by_unit.items():
        for r in sorted(unit_cells, key=order)[:c]:
            expected[(unit, *order(r))] = min(rows_per_cell, int(r["len"]))
    got = {(r["unit"], *order(r)): int(r["len"]) for r in per_cell.rows(named=True)}
    assert got == expected


def test_a_heavy_unit_is_cut_to_its_bounds() -> None:
    rows = [(0, d, h, 1.0) for d in ("north", "south", "east") for h in range(24) for _ in range(9)]
    rows += [(1, "north", 3, 2.0)]
    query = _query("count", ["district", "hour"], 2, 5)
    with snapshot_of(_frame(rows)) as snap:
        kept = bound_rows(snap.scan("s.x"), bounding_key(query))
    heavy = kept.filter(pl.col("unit") == kept.filter(pl.col("value") == 1.0)["unit"][0])
    assert heavy.height == 2 * 5
    assert heavy.select(pl.struct("district", "hour").n_unique()).item() == 5
    # The lowest cells by key: "east" sorts first, hours 0..4.
    assert set(heavy["district"]) == {"east"} and sorted(set(heavy["hour"])) == [
        DAY0 + h * HOUR_NS for h in range(5)
    ]
    assert kept.filter(pl.col("value") == 2.0).height == 1  # the light unit keeps its row


def test_the_sample_within_a_cell_is_random() -> None:
    """The rows kept in a cell are a random sample, not always the same (e.g. earliest) ones."""
    rows = [(0, "north", 2, float(i)) for i in range(40)]
    query = _query("sum", ["district"], 1, 1)
    with snapshot_of(_frame(rows)) as snap:
        seen = {float(bound_rows(snap.scan("s.x"), bounding_key(query))["value"][0]) for _ in range(30)}
    assert len(seen) > 5


def test_bounded_snapshot_is_made_once_per_bounds_and_dropped_with_the_snapshot() -> None:
    rows = [(u, "north", u % 24, 1.0) for u in range(50)]
    snap = snapshot_of(_frame(rows))
    a = bounded_snapshot(snap, _query("count", ["district"], 2, 1))
    b = bounded_snapshot(snap, _query("sum", ["district"], 2, 1))  # same stream, range and bounds
    c = bounded_snapshot(snap, _query("count", ["district"], 3, 1))
    assert a is b and a is not c
    assert a.rows == 50 and a.scan().collect().columns == ["district", "value"]  # no unit column
    snap.close()
    with pytest.raises(InvalidQuery):
        a.scan()


def test_measure_refuses_a_bounded_frame_made_for_other_bounds() -> None:
    rows = [(u, "north", 1, 1.0) for u in range(20)]
    with snapshot_of(_frame(rows)) as snap:
        bounded: BoundedFrame = bounded_snapshot(snap, _query("count", ["district"], 2, 1))
        with pytest.raises(InvalidQuery):
            measure(bounded, _query("count", ["district"], 5, 1), DISTRICTS)
        with pytest.raises(InvalidQuery):
            measure(bounded, _query("count", ["district", "hour"], 2, 1), DISTRICTS)
        assert measure(bounded, _query("count", ["district"], 2, 1), DISTRICTS).rho <= 0.05


# -- the declared bounds against OpenDP's own truncation ------------------------------------------

_RAW_COLUMNS: dict[str, Any] = {
    "unit": dp.u32,
    "district": dp.String,
    "ts_ns": dp.i64,
    "hour": dp.i64,
    "day": dp.i64,
    "value": dp.f64,
}
_RAW_SCHEMA: dict[str, pl.DataType] = {
    "unit": pl.UInt32(),
    "district": pl.String(),
    "ts_ns": pl.Int64(),
    "hour": pl.Int64(),
    "day": pl.Int64(),
    "value": pl.Float64(),
}


def _raw_domain() -> Any:
    domain = dp.lazyframe_domain(
        [
            dp.series_domain(n, dp.atom_domain(T=t, nan=False) if t == dp.f64 else dp.atom_domain(T=t))
            for n, t in _RAW_COLUMNS.items()
        ]
    )
    for by in ([], ["hour"], ["day"]):
        domain = dp.with_margin(domain, dp.polars.Margin(by=by, max_length=MAX_SNAPSHOT_ROWS))
    for by in (["district"], ["district", "hour"], ["district", "day"]):
        domain = dp.with_margin(
            domain,
            dp.polars.Margin(by=by, max_length=MAX_SNAPSHOT_ROWS, max_groups=MAX_DISTRICTS * 24 * 31),
        )
    return domain


def _truncating_measurement(query: Query, scale: float, threshold: int | None) -> tuple[Any, Any]:
    """OpenDP's own analysis: identifier-level privacy unit, truncation inside the plan.

    ``int_range < k`` over (unit, cell) is accounted as k rows per cell and
    ``rank("dense") < c`` over unit as c cells.
    """
    plan = pl.LazyFrame(schema=_RAW_SCHEMA).filter(
        (pl.col("ts_ns") >= query.start_ns) & (pl.col("ts_ns") < query.end_ns)
    )
    cells = list(cell_columns(query))
    if query.metric == "histogram":
        plan = plan.with_columns(
            pl.col("value")
            .clip(query.bins[0], query.bins[-1])
            .cut(list(query.bins[1:-1]), left_closed=True)
            .cast(pl.String)
            .alias("bin")
        )
    plan = plan.filter(pl.int_range(pl.len()).over("unit", *cells) < query.bounds.rows_per_cell)
    if cells:
        plan = plan.filter(pl.struct(*cells).rank("dense").over("unit") < query.bounds.cells_per_unit)
        grouped = plan.group_by(*cells).agg(*_aggregations(query))
        keys = public_keys(query, DISTRICTS)
        plan = grouped if keys is None else keys.lazy().join(grouped, how="left", on=cells, nulls_equal=True)
    else:
        plan = plan.select(*_aggregations(query))
    metric, d_in = dp.unit_of(contributions=1, identifier="unit")
    measure_ = (
        dp.approximate(dp.zero_concentrated_divergence())
        if query.keys == "released"
        else dp.zero_concentrated_divergence()
    )
    m = dp.m.make_private_lazyframe(
        _raw_domain(), metric, measure_, plan, global_scale=scale, threshold=threshold
    )
    return m, d_in


def _declared_measurement(query: Query, scale: float, threshold: int | None) -> tuple[Any, Any]:
    key = bounding_key(query)
    metric, d_in = _privacy_unit(key)
    measure_ = (
        dp.approximate(dp.zero_concentrated_divergence())
        if query.keys == "released"
        else dp.zero_concentrated_divergence()
    )
    plan = _plan(key.columns, query, public_keys(query, DISTRICTS))
    m = dp.m.make_private_lazyframe(
        _frame_domain(key.columns), metric, measure_, plan, global_scale=scale, threshold=threshold
    )
    return m, d_in


SHAPES: list[tuple[str, list[str], int, int, dict[str, Any]]] = [
    ("count", ["district", "hour"], 4, 24, {}),  # the dashboard's traffic per district and hour
    ("count", ["district"], 48, 3, {}),
    ("sum", ["district"], 24, 1, {}),
    ("mean", ["district"], 12, 1, {}),
    ("sum", ["hour"], 2, 4, {}),
    ("count", [], 3, 1, {}),
    ("count", ["district", "day"], 5, 2, {}),
    ("quantile", ["district"], 3, 1, {"quantiles": [0.25, 0.5]}),
    ("histogram", ["district"], 2, 3, {"bins": [0.0, 2.5, 5.0, 10.0]}),
    ("count", ["district"], 6, 2, {"keys": "released", "privacy": {"rho": 0.05, "delta": 1e-7}}),
    ("mean", ["district", "hour"], 2, 6, {"keys": "released", "privacy": {"rho": 0.05, "delta": 1e-7}}),
]


@pytest.mark.parametrize(("metric", "group_by", "k", "c", "extra"), SHAPES)
def test_declared_bounds_cost_what_opendps_own_truncation_costs(
    metric: str, group_by: list[str], k: int, c: int, extra: dict[str, Any]
) -> None:
    """Same plan, same noise scale: OpenDP's privacy map agrees to the last bits.

    The declared-bounds plan (rows already bounded by our loader, bounds told to OpenDP through
    ``dp.unit_of(contributions=[Bound(...)])``) and the plan where OpenDP truncates by the
    privacy-unit identifier itself must report the same loss for the same bounds; never less.
    """
    query = _query(metric, group_by, k, c, **extra)
    threshold = 1_000 if query.keys == "released" else None
    for scale in (0.5, 7.0, 300.0):
        declared, d_declared = _declared_measurement(query, scale, threshold)
        truncating, d_truncating = _truncating_measurement(query, scale, threshold)
        ours, theirs = declared.map(d_declared), truncating.map(d_truncating)
        if query.keys == "released":
            assert ours[0] == pytest.approx(theirs[0], rel=1e-9) and ours[0] >= theirs[0] * (1 - 1e-12)
            assert ours[1] == pytest.approx(theirs[1], rel=1e-9)
        else:
            assert ours == pytest.approx(theirs, rel=1e-9) and ours >= theirs * (1 - 1e-12)


def test_a_heavy_citizen_moves_a_released_count_by_its_bound_only(
    engine: sa.Engine, city_day: pl.DataFrame
) -> None:
    """Through the service (kept snapshot, bounded rows, declared bounds): 3000 extra readings of
    one citizen in one cell move the released count by rows_per_cell, plus noise."""
    create_schema(engine)
    heavy = pl.DataFrame(
        {
            "unit": ["heavy-citizen"] * 3000,
            "stream": ["vehicle.location"] * 3000,
            "district": ["centre"] * 3000,
            "ts_ns": [DAY0 + 5 * HOUR_NS] * 3000,
            "value": [1.0] * 3000,
        }
    )
    raw = {
        "metric": "count",
        "stream": "vehicle.location",
        "group_by": ["district"],
        "start_ns": DAY0,
        "end_ns": DAY0 + DAY_NS,
        "bounds": {"rows_per_cell": 2, "cells_per_unit": 1},
        "privacy": {"rho": 1.0},
    }
    policy = BudgetPolicy(dataset_rho=2.0, analyst_rho=2.0)
    released: dict[str, float] = {}
    for name, frame in (("base", city_day), ("heavy", pl.concat([city_day, heavy]))):
        service = Analytics(engine, FrameSource(frame), DISTRICTS, policy, dataset=name)
        body = service.submit(raw, "a1").release.body
        (cell,) = [c for c in body["cells"] if c["district"] == "centre"]
        released[name] = float(cell["estimates"][0]["value"])
        accuracy = float(cell["estimates"][0]["accuracy_95"])
    with snapshot_of(city_day) as snap:
        exact = (
            bound_rows(snap.scan("vehicle.location"), bounding_key(parse_query(raw)))
            .filter(pl.col("district") == "centre")
            .height
        )
    # accuracy_95 is ~1.96 sd: 3x is ~6 sd, 5x for a difference of two releases ~7 sd.
    assert abs(released["heavy"] - (exact + 2)) <= 3 * accuracy
    assert abs(released["heavy"] - released["base"]) <= 2 + 5 * accuracy
    assert released["heavy"] < exact + 100  # nowhere near the 3000 raw readings
