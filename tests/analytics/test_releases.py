"""Releases hold only aggregates with their accuracy and privacy parameters (JSON and CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import polars as pl
import pytest

from analytics import Analytics, ReleaseNotFound, release_csv
from analytics.data import DAY_NS

from .conftest import DAY0, count_query

STATISTIC_FIELDS = {"statistic", "value", "accuracy_95", "distribution", "scale", "display", "postprocessing"}


def _queries() -> list[dict[str, object]]:
    day = {"start_ns": DAY0, "end_ns": DAY0 + DAY_NS}
    return [
        count_query(group_by=["district", "hour"]),
        {
            "metric": "mean",
            "stream": "home.energy_kwh",
            "group_by": ["district"],
            **day,
            "bounds": {"rows_per_cell": 24, "cells_per_unit": 1, "value_min": 0.0, "value_max": 5.0},
            "privacy": {"rho": 0.05},
        },
        {
            "metric": "quantile",
            "stream": "home.air_pm25",
            "group_by": ["district"],
            **day,
            "quantiles": [0.25, 0.5],
            "bounds": {"rows_per_cell": 5, "cells_per_unit": 1, "value_min": 0.0, "value_max": 50.0},
            "privacy": {"rho": 0.05},
        },
        {
            "metric": "histogram",
            "stream": "home.air_pm25",
            "group_by": [],
            **day,
            "bins": [0, 5, 10, 20, 50],
            "bounds": {"rows_per_cell": 5, "cells_per_unit": 4, "value_min": 0.0, "value_max": 50.0},
            "privacy": {"rho": 0.02},
        },
        {
            "metric": "sum",
            "stream": "home.energy_kwh",
            "group_by": ["district", "day"],
            "keys": "released",
            **day,
            "bounds": {"rows_per_cell": 24, "cells_per_unit": 1, "value_min": 0.0, "value_max": 5.0},
            "privacy": {"rho": 0.05, "delta": 1e-8},
        },
    ]


def test_releases_contain_only_aggregates(
    make_analytics: Callable[..., Analytics], city_day: pl.DataFrame
) -> None:
    from analytics.accountant import BudgetPolicy

    service = make_analytics(BudgetPolicy(dataset_rho=1.0, analyst_rho=1.0, analyst_delta=1e-6))
    units = set(city_day.get_column("unit").unique().to_list())
    for raw in _queries():
        release = service.submit(raw, "alice").release
        text = json.dumps(release.body) + release_csv(release.body)
        assert not any(u in text for u in units), "a unit identifier leaked into a release"
        assert "citizen-" not in text and "sensor-" not in text
        body = release.body
        allowed_keys = set(body["columns"]) | {"estimates"}
        for cell in body["cells"]:
            assert set(cell) <= allowed_keys
            for e in cell["estimates"]:
                assert set(e) >= STATISTIC_FIELDS
        privacy = body["privacy"]
        assert privacy["rho"] <= raw["privacy"]["rho"]  # type: ignore[index]
        assert privacy["epsilon"] > 0 and privacy["epsilon_delta"] >= 1e-9
        assert "unit" in privacy and privacy["bounds"] == body["query"]["bounds"]


def test_counts_are_signed_and_display_is_labelled_postprocessing(
    make_analytics: Callable[..., Analytics],
) -> None:
    service = make_analytics()
    # An empty stream: the exact counts are zero, so roughly half the noisy values are negative.
    body = service.submit(
        count_query(group_by=["district", "hour"]) | {"stream": "no.such_stream"}, "a"
    ).release.body
    values = [e["value"] for c in body["cells"] for e in c["estimates"]]
    displays = [e["display"] for c in body["cells"] for e in c["estimates"]]
    assert any(v < 0 for v in values)
    assert all(d >= 0 for d in displays)
    assert all(e["postprocessing"] == "display: clamped at 0" for c in body["cells"] for e in c["estimates"])
    assert all(isinstance(v, int) for v in values)


def test_mean_release_reports_sum_count_and_derived_interval(
    make_analytics: Callable[..., Analytics],
) -> None:
    body = make_analytics().submit(_queries()[1], "a").release.body
    for cell in body["cells"]:
        stats = {e["statistic"]: e for e in cell["estimates"]}
        assert set(stats) == {"mean", "sum", "count"}
        mean = stats["mean"]
        assert mean["accuracy_95"] is None and "union bound" in mean["postprocessing"]
        assert 0.0 <= mean["value"] <= 5.0
        low, high = mean["interval_90"]
        assert low <= mean["value"] <= high


def test_csv_has_one_row_per_statistic_with_privacy_parameters(
    make_analytics: Callable[..., Analytics],
) -> None:
    body = make_analytics().submit(count_query(group_by=["district", "hour"]), "a").release.body
    rows = list(csv.DictReader(io.StringIO(release_csv(body))))
    assert len(rows) == 6 * 24
    assert {r["release_id"] for r in rows} == {body["id"]}
    assert rows[0]["hour"].endswith("T00:00:00Z") and rows[0]["statistic"] == "count"
    assert float(rows[0]["rho"]) == body["privacy"]["rho"] and float(rows[0]["accuracy_95"]) > 0


def test_release_lookup_and_listing(make_analytics: Callable[..., Analytics]) -> None:
    service = make_analytics()
    a = service.submit(count_query(rows_per_cell=1), "alice").release
    b = service.submit(count_query(rows_per_cell=2), "bob").release
    assert service.release(a.id).body == a.body
    assert {r.id for r in service.releases()} == {a.id, b.id}
    assert [r.id for r in service.releases(analyst="bob")] == [b.id]
    with pytest.raises(ReleaseNotFound):
        service.release("00000000-0000-0000-0000-000000000000")
    with pytest.raises(ReleaseNotFound):
        service.release("not-a-uuid")


def test_mean_interval_is_clamped_into_the_bounds() -> None:
    from analytics.measurements import Estimate
    from analytics.queries import parse_query
    from analytics.releases import _mean

    query = parse_query(_queries()[1])
    # noisy sum far below zero: the mean and both interval ends clamp to value_min
    low = _mean(
        [
            Estimate("sum", -500.0, 100.0, "Float Gaussian", 50.0),
            Estimate("count", 1000.0, 30.0, "Integer Gaussian", 15.0),
        ],
        query,
    )
    assert low is not None and low["value"] == 0.0 and low["interval_90"] == [0.0, 0.0]
    high = _mean(
        [
            Estimate("sum", 9000.0, 100.0, "Float Gaussian", 50.0),
            Estimate("count", 1000.0, 30.0, "Integer Gaussian", 15.0),
        ],
        query,
    )
    assert high is not None and high["value"] == 5.0 and high["interval_90"] == [5.0, 5.0]
    tiny = _mean(
        [
            Estimate("sum", 10.0, 100.0, "Float Gaussian", 50.0),
            Estimate("count", 0.0, 30.0, "Integer Gaussian", 15.0),
        ],
        query,
    )
    assert tiny is not None and tiny["value"] is None and tiny["interval_90"] is None
