"""OpenDP measurements: stated accuracy matches the empirical spread; contribution bounds hold."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from analytics.data import DAY_NS, HOUR_NS, snapshot_of
from analytics.measurements import Measured, bounded_rows, epsilon_of_rho, measure
from analytics.queries import parse_query
from analytics.synthetic import DISTRICTS

from .conftest import DAY0

HOURS = 24
RELEASES = 30  # x 144 cells = 4320 independent noisy values per statistic


def _one_row_per_unit_frame(seed: int = 3) -> pl.DataFrame:
    """Every unit has exactly one reading, so no contribution bound ever binds (exact = bounded)."""
    rng = np.random.default_rng(seed)
    rows = []
    unit = 0
    for d_i, district in enumerate(DISTRICTS):
        for hour in range(HOURS):
            for _ in range(5 + (d_i * 7 + hour) % 11):
                rows.append(
                    {
                        "unit": f"u{unit}",
                        "stream": "s.x",
                        "district": district,
                        "ts_ns": DAY0 + hour * HOUR_NS + int(rng.integers(0, 60)) * 60_000_000_000,
                        "value": float(rng.uniform(0.0, 10.0)),
                    }
                )
                unit += 1
    return pl.DataFrame(rows)


def _query(metric: str, rho: float) -> dict[str, object]:
    return {
        "metric": metric,
        "stream": "s.x",
        "group_by": ["district", "hour"],
        "start_ns": DAY0,
        "end_ns": DAY0 + DAY_NS,
        "bounds": {"rows_per_cell": 1, "cells_per_unit": 1, "value_min": 0.0, "value_max": 10.0},
        "privacy": {"rho": rho},
    }


def _exact(frame: pl.DataFrame, metric: str) -> dict[tuple[str, int], float]:
    agg = pl.len().cast(pl.Float64) if metric == "count" else pl.col("value").clip(0.0, 10.0).sum()
    grouped = (
        frame.lazy()
        .with_columns((pl.col("ts_ns") // HOUR_NS * HOUR_NS).alias("hour"))
        .group_by("district", "hour")
        .agg(agg.alias("x"))
        .collect()
    )
    return {(r["district"], r["hour"]): float(r["x"]) for r in grouped.iter_rows(named=True)}


@pytest.mark.parametrize(("metric", "rho"), [("count", 0.01), ("sum", 0.05)])
def test_empirical_spread_matches_stated_accuracy(metric: str, rho: float) -> None:
    """~95% of released values lie within OpenDP's stated 95% accuracy of the exact value.

    With n = 4320 values the number outside is Binomial(n, ~0.05): mean ~216, sd ~14. The window
    [80, 400] is more than 9 sd from the mean on both sides (a false failure is astronomically
    unlikely), while a noise scale off by 2x gives ~1410 (too much noise) or ~0.4 (too little).
    """
    frame = _one_row_per_unit_frame()
    exact = _exact(frame, metric)
    query = parse_query(_query(metric, rho))
    errors: list[float] = []
    outside = 0
    scales: set[float] = set()
    with snapshot_of(frame) as snap:
        for _ in range(RELEASES):
            released: Measured = measure(snap.scan("s.x"), query, DISTRICTS)
            assert released.rho <= rho
            assert len(released.cells) == len(DISTRICTS) * HOURS
            for key, estimates in released.cells:
                (e,) = estimates
                assert e.value is not None and e.accuracy_95 is not None and e.accuracy_95 > 0
                assert e.scale is not None
                scales.add(e.scale)
                error = e.value - exact[(key["district"], key["hour"])]
                errors.append(error)
                outside += abs(error) > e.accuracy_95
    n = len(errors)
    assert n == RELEASES * len(DISTRICTS) * HOURS
    assert 80 <= outside <= 400, f"{outside} of {n} outside the stated 95% accuracy"
    spread = float(np.std(errors))
    assert spread > 0.0 and len(set(errors)) > 20  # noise is real and never degenerate
    # The empirical standard deviation matches OpenDP's stated Gaussian scale (relative standard
    # error of the estimate ~1.1% at this n; a 2x scale error is far outside +-20%).
    (scale,) = scales
    assert 0.8 * scale <= spread <= 1.25 * scale


def test_a_heavy_unit_moves_counts_by_at_most_the_bounds(city_day: pl.DataFrame) -> None:
    """One unit with thousands of rows in many cells changes the bounded data only within the bounds."""
    rows_per_cell, cells_per_unit = 3, 2
    heavy = pl.DataFrame(
        {
            "unit": ["heavy-citizen"] * 5000,
            "stream": ["vehicle.location"] * 5000,
            "district": [DISTRICTS[i % len(DISTRICTS)] for i in range(5000)],
            "ts_ns": [DAY0 + (i % 24) * HOUR_NS for i in range(5000)],
            "value": [1.0] * 5000,
        }
    )
    query = parse_query(
        {
            "metric": "count",
            "stream": "vehicle.location",
            "group_by": ["district", "hour"],
            "start_ns": DAY0,
            "end_ns": DAY0 + DAY_NS,
            "bounds": {"rows_per_cell": rows_per_cell, "cells_per_unit": cells_per_unit},
            "privacy": {"rho": 0.05},
        }
    )

    def bounded_counts(frame: pl.DataFrame) -> dict[tuple[str, int], int]:
        with snapshot_of(frame) as snap:
            out = (
                bounded_rows(snap.scan("vehicle.location"), query)
                .group_by("district", "hour")
                .len()
                .collect()
            )
        return {(r["district"], r["hour"]): int(r["len"]) for r in out.iter_rows(named=True)}

    before = bounded_counts(city_day)
    after = bounded_counts(pl.concat([city_day, heavy]))
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    changed = {k: v for k, v in moved.items() if v}
    assert 0 < len(changed) <= cells_per_unit
    assert all(0 < v <= rows_per_cell for v in changed.values())
    assert sum(changed.values()) <= rows_per_cell * cells_per_unit


def test_released_counts_with_a_heavy_unit_stay_within_bound_plus_noise(city_day: pl.DataFrame) -> None:
    heavy = pl.DataFrame(
        {
            "unit": ["heavy-citizen"] * 3000,
            "stream": ["vehicle.location"] * 3000,
            "district": ["centre"] * 3000,
            "ts_ns": [DAY0] * 3000,
            "value": [1.0] * 3000,
        }
    )
    query = parse_query(
        {
            "metric": "count",
            "stream": "vehicle.location",
            "group_by": ["district"],
            "start_ns": DAY0,
            "end_ns": DAY0 + DAY_NS,
            "bounds": {"rows_per_cell": 2, "cells_per_unit": 1},
            "privacy": {"rho": 1.0},
        }
    )
    with snapshot_of(city_day) as a, snapshot_of(pl.concat([city_day, heavy])) as b:
        base = measure(a.scan("vehicle.location"), query, DISTRICTS)
        with_heavy = measure(b.scan("vehicle.location"), query, DISTRICTS)
        exact_before = bounded_rows(a.scan("vehicle.location"), query).filter(pl.col("district") == "centre")
        n_before = exact_before.select(pl.len()).collect().item()
    (e_base,) = next(e for k, e in base.cells if k["district"] == "centre")
    (e_heavy,) = next(e for k, e in with_heavy.cells if k["district"] == "centre")
    assert e_base.value is not None and e_heavy.value is not None and e_base.accuracy_95 is not None
    # The heavy unit adds exactly rows_per_cell = 2 bounded rows. accuracy_95 is ~1.96 sd, so
    # 3x it is ~6 sd (a false failure ~1e-9) and 5x for the difference of two releases ~7 sd.
    assert abs(e_heavy.value - (n_before + 2)) <= 3 * e_base.accuracy_95
    assert abs(e_heavy.value - e_base.value) <= 2 + 5 * e_base.accuracy_95
    assert e_heavy.value < n_before + 100  # nowhere near the 3000 raw rows


def test_epsilon_conversion_is_opendps_and_monotone() -> None:
    assert epsilon_of_rho(0.0) == 0.0
    eps = [epsilon_of_rho(r) for r in (0.01, 0.1, 0.5, 1.0)]
    assert eps == sorted(eps) and eps[0] > 0
    # rho + 2 sqrt(rho ln(1/delta)) is the classic upper bound; OpenDP's conversion is tighter.
    import math

    assert epsilon_of_rho(0.5, 1e-9) <= 0.5 + 2 * math.sqrt(0.5 * math.log(1e9))
    with pytest.raises(ValueError):
        epsilon_of_rho(-1.0)


def test_released_keys_suppress_small_groups() -> None:
    """Without public keys, OpenDP's thresholding drops groups too small to release safely."""
    rows = [
        {"unit": f"{d}-{i}", "stream": "s.k", "district": d, "ts_ns": DAY0, "value": 1.0}
        for d in ("north", "south")
        for i in range(3000)
    ]
    rows.append({"unit": "lonely", "stream": "s.k", "district": "secret-hamlet", "ts_ns": DAY0, "value": 1.0})
    query = parse_query(
        {
            "metric": "count",
            "stream": "s.k",
            "group_by": ["district"],
            "keys": "released",
            "start_ns": DAY0,
            "end_ns": DAY0 + DAY_NS,
            "bounds": {"rows_per_cell": 1, "cells_per_unit": 1},
            "privacy": {"rho": 0.5, "delta": 1e-7},
        }
    )
    with snapshot_of(pl.DataFrame(rows)) as snap:
        released = measure(snap.scan("s.k"), query, DISTRICTS)
    keys = {k["district"] for k, _ in released.cells}
    assert keys == {"north", "south"}
    assert released.threshold is not None and 1 < released.threshold < 3000
    assert released.rho <= 0.5 and 0 < released.delta <= 1e-7
