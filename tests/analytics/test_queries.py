"""The declarative query: validation limits, canonical form and hash, budget periods."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.data import DAY_NS, HOUR_NS
from analytics.errors import InvalidQuery
from analytics.queries import parse_query

from .conftest import DAY0, count_query


def test_canonical_hash_ignores_field_order_and_group_order() -> None:
    a = parse_query(count_query(group_by=["district", "hour"]))
    raw = count_query(group_by=["hour", "district"])
    b = parse_query(dict(reversed(list(raw.items()))))
    assert a == b
    assert a.canonical_hash("readings") == b.canonical_hash("readings")
    assert a.group_by == ("district", "hour")


@pytest.mark.parametrize(
    "change",
    [
        {"rho": 0.06},
        {"rows_per_cell": 4},
        {"day": DAY0 + DAY_NS},
        {"stream": "home.energy_kwh"},
    ],
)
def test_canonical_hash_changes_with_every_parameter(change: dict[str, Any]) -> None:
    base = parse_query(count_query())
    stream = change.pop("stream", None)
    raw = count_query(**change)
    if stream:
        raw["stream"] = stream
    assert parse_query(raw).canonical_hash("readings") != base.canonical_hash("readings")
    assert base.canonical_hash("readings") != base.canonical_hash("other")


def test_periods_cover_every_touched_day() -> None:
    q = parse_query(count_query() | {"start_ns": DAY0 + 23 * HOUR_NS, "end_ns": DAY0 + DAY_NS + HOUR_NS})
    assert q.periods() == [DAY0, DAY0 + DAY_NS]
    assert parse_query(count_query()).periods() == [DAY0]


def _bad(**patch: Any) -> dict[str, Any]:
    raw: dict[str, Any] = count_query()
    for key, value in patch.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (_bad(metric="max"), "metric"),
        (_bad(stream="Robert'); DROP TABLE"), "stream"),
        (_bad(group_by=["unit"]), "group_by"),
        (_bad(group_by=["hour", "day"]), "one time bucket"),
        (_bad(start_ns=DAY0 + 1), "aligned"),
        (_bad(end_ns=DAY0), "start_ns < end_ns"),
        (_bad(end_ns=DAY0 + 40 * DAY_NS), "exceeds"),
        (_bad(privacy={"rho": 0}), "rho"),
        (_bad(privacy={"rho": 5.0}), "rho"),
        (_bad(privacy={"rho": 0.1, "delta": 1e-9}), "delta"),
        (_bad(privacy={"epsilon": 1.0}), "privacy"),
        (_bad(bounds={"rows_per_cell": 0}), "rows_per_cell"),
        (_bad(bounds={"rows_per_cell": 10**9}), "rows_per_cell"),
        (_bad(bounds=None), "bounds"),
        (_bad(metric="sum"), "value_min < value_max"),
        (_bad(keys="released"), "delta"),
        (_bad(unit="x"), "unknown fields"),
        (_bad(bins=[0, 1]), "histogram"),
        (_bad(metric="quantile", quantiles=[0.3], bounds={"rows_per_cell": 1, "value_max": 1.0}), "1/8"),
        (_bad(start_ns="yesterday"), "integer"),
        (_bad(privacy={"rho": float("nan")}), "finite"),
    ],
)
def test_invalid_queries_are_refused(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidQuery, match=None) as info:
        parse_query(raw)
    assert fragment in str(info.value)


def test_quantile_and_histogram_defaults() -> None:
    q = parse_query(
        _bad(metric="quantile", quantiles=[0.5, 0.25], bounds={"rows_per_cell": 2, "value_max": 100.0})
    )
    assert q.candidates[0] == 0.0 and q.candidates[-1] == 100.0 and len(q.candidates) == 101
    h = parse_query(
        _bad(
            metric="histogram",
            bins=[0, 10, 50, 100],
            bounds={"rows_per_cell": 2, "cells_per_unit": 4, "value_max": 100},
        )
    )
    assert h.bins == (0.0, 10.0, 50.0, 100.0)
    assert h.bounds.cells_per_unit == 4  # bins are cells: a unit may reach several of them
    ungrouped = {"rows_per_cell": 2, "cells_per_unit": 4, "value_max": 100}
    assert parse_query(_bad(group_by=[], bounds=ungrouped)).bounds.cells_per_unit == 1  # one cell
    assert (
        parse_query(
            _bad(metric="histogram", group_by=[], bins=[0, 10, 100], bounds=ungrouped)
        ).bounds.cells_per_unit
        == 4
    )
    with pytest.raises(InvalidQuery):
        parse_query(_bad(metric="histogram", bins=[1, 10], bounds={"rows_per_cell": 2, "value_max": 10.0}))
