"""OpenDP measurements for analyst queries: plan construction, noise calibration, release.

Every query becomes one OpenDP Polars plan built through the Context API:

1. public predicates (time range) and, for histograms, public binning;
2. contribution bounds: at most ``rows_per_cell`` rows per unit and cell and at most
   ``cells_per_unit`` cells per unit (lowest keys first; the rows kept are a random sample),
   enforced once per snapshot and bounds by `analytics.bounding` before the plan, and declared
   to OpenDP as the privacy unit's contributions (``dp.unit_of(contributions=[Bound(...)])``), from
   which OpenDP derives every sensitivity;
3. aggregation with noise: ``dp.len(signed=True)`` counts, ``dp.sum`` sums (values clamped
   into the bounds), ``dp.quantile`` (exponential mechanism over public candidates); grouped over
   public key sets (``with_keys``) or, when keys are released, under OpenDP's thresholding.

Noise is calibrated without OpenDP's binary search: OpenDP's own privacy map is evaluated at
a unit scale, the scale for the target rho follows from rho ∝ 1/scale² (Gaussian and
exponential mechanisms under zCDP), and the resulting measurement is re-checked with OpenDP's
map before use. Calibrated scales are cached by query shape; a cached scale is re-checked too,
so the cache can cost accuracy but never privacy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import opendp.prelude as dp
import polars as pl
import pyarrow  # type: ignore[import-untyped]  # noqa: F401  (OpenDP converts released frames with it: import once, up front)
from opendp.accuracy import summarize_polars_measurement
from opendp.extras.polars import Margin, dp_len

from analytics.bounding import (
    BoundedFrame,
    BoundingKey,
    bin_labels,
    bound_contributions,
    bounding_key,
    cell_columns,
    declared_bounds,
)
from analytics.data import DAY_NS, HOUR_NS, MAX_SNAPSHOT_ROWS
from analytics.errors import InvalidQuery
from analytics.queries import Query, count_cells

dp.enable_features("contrib")

__all__ = [
    "ALPHA",
    "CONVERSION_DELTA",
    "MAX_DISTRICTS",
    "Estimate",
    "Measured",
    "bounded_rows",
    "epsilon_of_rho",
    "group_columns",
    "measure",
]

ALPHA: Final = 0.05  # accuracy is stated at 95% confidence
CONVERSION_DELTA: Final = 1e-9  # delta at which rho is reported as (epsilon, delta)-DP
MAX_DISTRICTS: Final = 1_000  # public bound on the number of districts (key release needs it)
_CACHE_LIMIT: Final = 4_096

_POLARS_TYPES: Final[dict[str, pl.DataType]] = {
    "district": pl.String(),
    "hour": pl.Int64(),
    "day": pl.Int64(),
    "bin": pl.String(),
    "value": pl.Float64(),
}
_COLUMN_TYPES: Final[dict[str, Any]] = {
    "district": dp.String,
    "hour": dp.i64,
    "day": dp.i64,
    "bin": dp.String,
    "value": dp.f64,
}


@dataclass(frozen=True)
class Estimate:
    """One released number: the noisy value and OpenDP's 95% accuracy for it (None if n/a)."""

    statistic: str
    value: float | None
    accuracy_95: float | None
    distribution: str | None
    scale: float | None


@dataclass(frozen=True)
class Measured:
    """A query's released cells (group keys -> estimates) with OpenDP's privacy accounting."""

    group_columns: tuple[str, ...]
    cells: list[tuple[dict[str, Any], list[Estimate]]]
    rho: float
    delta: float
    threshold: int | None


@lru_cache(maxsize=32)
def _frame_domain(columns: tuple[str, ...]) -> Any:
    """The domain of a bounded frame with these columns (cell columns and value)."""
    series = [
        dp.series_domain(c, dp.atom_domain(T=_COLUMN_TYPES[c], nan=False))
        if _COLUMN_TYPES[c] == dp.f64
        else dp.series_domain(c, dp.atom_domain(T=_COLUMN_TYPES[c]))
        for c in columns
    ]
    domain = dp.lazyframe_domain(series)
    plain: tuple[tuple[str, ...], ...] = ((), ("hour",), ("day",))
    grouped: tuple[tuple[str, ...], ...] = (("district",), ("district", "hour"), ("district", "day"))
    for by in plain:
        if set(by) <= set(columns):
            domain = dp.with_margin(domain, Margin(by=list(by), max_length=MAX_SNAPSHOT_ROWS))
    for by in grouped:
        if set(by) <= set(columns):
            domain = dp.with_margin(
                domain,
                Margin(by=list(by), max_length=MAX_SNAPSHOT_ROWS, max_groups=MAX_DISTRICTS * 24 * 31),
            )
    return domain


def _privacy_unit(key: BoundingKey) -> tuple[Any, Any]:
    """One citizen, as OpenDP sees the bounded frame: the rows their data can add or remove."""
    return dp.unit_of(contributions=declared_bounds(key))


def epsilon_of_rho(rho: float, delta: float = CONVERSION_DELTA) -> float:
    """epsilon such that rho-zCDP implies (epsilon, delta)-DP, by OpenDP's conversion."""
    if not rho >= 0.0 or not 0.0 < delta < 1.0:
        raise ValueError("need rho >= 0 and 0 < delta < 1")
    if rho == 0.0:
        return 0.0
    gaussian = dp.m.make_gaussian(
        dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=1.0
    )
    # A unit-scale Gaussian at sensitivity sqrt(2 rho) is exactly rho-zCDP.
    approx: Any = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(gaussian), delta)
    return float(approx.map(math.sqrt(2.0 * rho))[0])


def _bucket_keys(query: Query) -> list[int]:
    step = HOUR_NS if query.time_bucket == "hour" else DAY_NS
    return list(range(query.start_ns // step * step, query.end_ns, step))


def public_keys(query: Query, districts: Sequence[str]) -> pl.DataFrame | None:
    """The public key set of the query's grouping, or None when ungrouped / keys are released."""
    if query.keys == "released":
        return None
    parts: list[pl.DataFrame] = []
    if "district" in query.group_by:
        parts.append(pl.DataFrame({"district": list(districts)}, schema={"district": pl.String}))
    if query.time_bucket is not None:
        parts.append(
            pl.DataFrame({query.time_bucket: _bucket_keys(query)}, schema={query.time_bucket: pl.Int64})
        )
    if query.metric == "histogram":
        parts.append(pl.DataFrame({"bin": bin_labels(query.bins)}, schema={"bin": pl.String}))
    if not parts:
        return None
    keys = parts[0]
    for part in parts[1:]:
        keys = keys.join(part, how="cross")
    return keys


def _statistics(query: Query) -> list[str]:
    if query.metric == "count" or query.metric == "histogram":
        return ["count"]
    if query.metric == "sum":
        return ["sum", "count"] if query.keys == "released" else ["sum"]
    if query.metric == "mean":
        return ["sum", "count"]
    return [_quantile_name(q) for q in query.quantiles]


def _quantile_name(q: float) -> str:
    return f"p{q * 100:g}".replace(".", "_")


def _dp(expr: pl.Expr) -> Any:
    """The OpenDP `dp` namespace OpenDP registers on Polars expressions."""
    return expr.dp  # type: ignore[attr-defined]


def _aggregations(query: Query) -> list[pl.Expr]:
    lo, hi = query.bounds.value_min, query.bounds.value_max
    magnitude = max(abs(lo), abs(hi))
    out: list[pl.Expr] = []
    for name in _statistics(query):
        if name == "count":
            out.append(dp_len(scale=1.0, signed=True).alias("count"))
        elif name == "sum":
            # Relative scale = per-row sensitivity, so sum and count get equal shares of rho.
            out.append(_dp(pl.col("value")).sum((lo, hi), scale=magnitude).alias("sum"))
    for q in query.quantiles if query.metric == "quantile" else ():
        out.append(
            _dp(pl.col("value")).quantile(q, list(query.candidates), scale=1.0).alias(_quantile_name(q))
        )
    return out


def group_columns(query: Query) -> list[str]:
    return list(cell_columns(query))


def bounded_rows(frame: pl.LazyFrame, query: Query) -> pl.LazyFrame:
    """The rows a query aggregates after its contribution bounds (exact, no noise; for audits/tests)."""
    return bound_contributions(frame, bounding_key(query)).scan()


def _plan(columns: tuple[str, ...], query: Query, keys: pl.DataFrame | None) -> pl.LazyFrame:
    """The query plan over an empty frame of the bounded frame's schema; OpenDP binds the data.

    Public keys are joined the way OpenDP's ``with_keys`` does (a left join from the key set).
    """
    schema = {c: _POLARS_TYPES[c] for c in columns}
    plan = pl.LazyFrame(schema=schema)
    by = group_columns(query)
    if not by:
        return plan.select(*_aggregations(query))
    grouped = plan.group_by(*by).agg(*_aggregations(query))
    if keys is None:
        return grouped
    return keys.lazy().join(grouped, how="left", on=by, nulls_equal=True)


def _shape_key(query: Query, n_districts: int) -> tuple[Any, ...]:
    return (
        query.metric,
        query.group_by,
        query.bounds,
        query.rho,
        query.delta,
        query.keys,
        query.quantiles,
        (query.candidates[0], query.candidates[-1], len(query.candidates)) if query.candidates else (),
        len(query.bins),
        n_districts if query.keys == "public" else 0,
    )


class _ScaleCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, ...], tuple[float, int | None]] = {}

    def get(self, key: tuple[Any, ...]) -> tuple[float, int | None] | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: tuple[Any, ...], value: tuple[float, int | None]) -> None:
        with self._lock:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = value


_SCALES = _ScaleCache()


def _loss(measured: Any) -> tuple[float, float]:
    if isinstance(measured, tuple):
        return float(measured[0]), float(measured[1])
    return float(measured), 0.0


def _fits(loss: tuple[float, float], query: Query) -> bool:
    return loss[0] <= query.rho and loss[1] <= query.delta


def _calibrate(
    make: Callable[[float, int | None], Any], query: Query, key: tuple[Any, ...], d_in: Any
) -> tuple[Any, int | None, tuple[float, float]]:
    """The measurement at the largest privacy loss within the query's, its threshold and loss."""
    cached = _SCALES.get(key)
    if cached is not None:
        m = make(*cached)
        loss = _loss(m.map(d_in))
        if _fits(loss, query) and loss[0] >= query.rho * (1 - 1e-6):
            return m, cached[1], loss
    released = query.keys == "released"
    probe_threshold = 2**32 - 1 if released else None
    rho_unit, _ = _loss(make(1.0, probe_threshold).map(d_in))
    if not rho_unit > 0.0 or not math.isfinite(rho_unit):
        raise InvalidQuery("OpenDP reports no finite privacy loss for this query")
    scale = math.sqrt(rho_unit / query.rho)
    for attempt in range(16):
        if _loss(make(scale, probe_threshold).map(d_in))[0] <= query.rho:
            break
        scale *= 1.0 + 1e-12 * 4**attempt
    else:
        scale = float(
            dp.binary_search(lambda s: _loss(make(s, probe_threshold).map(d_in))[0] <= query.rho, T=float)
        )
    threshold: int | None = None
    if released:
        threshold = int(
            dp.binary_search(lambda t: _loss(make(scale, int(t)).map(d_in))[1] <= query.delta, T=int)
        )
    m = make(scale, threshold)
    loss = _loss(m.map(d_in))
    if not _fits(loss, query):
        raise InvalidQuery("could not calibrate noise to the requested privacy loss")
    _SCALES.put(key, (scale, threshold))
    return m, threshold, loss


def _summary(m: Any) -> dict[str, tuple[float | None, str | None, float | None]]:
    summary = summarize_polars_measurement(m, ALPHA)
    out: dict[str, tuple[float | None, str | None, float | None]] = {}
    for row in summary.iter_rows(named=True):
        accuracy = row.get("accuracy")
        out[str(row["column"])] = (
            None if accuracy is None else float(accuracy),
            None if row.get("distribution") is None else str(row["distribution"]),
            None if row.get("scale") is None else float(row["scale"]),
        )
    return out


def measure(data: BoundedFrame | pl.LazyFrame, query: Query, districts: Sequence[str]) -> Measured:
    """Release `query` with OpenDP; returns only aggregates.

    `data` is the query's bounded frame (`analytics.bounding.bounded_snapshot`) or a stream's
    snapshot rows, which are bounded here first.
    """
    bounds_key = bounding_key(query)
    if isinstance(data, pl.LazyFrame):
        data = bound_contributions(data, bounds_key)
    elif not isinstance(data, BoundedFrame) or data.key != bounds_key:
        raise InvalidQuery("the bounded frame was made for other contribution bounds")
    if count_cells(query, len(districts)) > 100_000:
        raise InvalidQuery("the query has more than 100000 cells")
    if len(districts) > MAX_DISTRICTS:
        raise InvalidQuery(f"more than {MAX_DISTRICTS} public districts")
    loss = (
        dp.loss_of(rho=query.rho, delta=query.delta)
        if query.keys == "released"
        else dp.loss_of(rho=query.rho)
    )
    keys = public_keys(query, districts)
    plan = _plan(bounds_key.columns, query, keys)
    input_metric, d_in = _privacy_unit(bounds_key)

    def make(scale: float, threshold: int | None) -> Any:
        return dp.m.make_private_lazyframe(
            input_domain=_frame_domain(bounds_key.columns),
            input_metric=input_metric,
            output_measure=loss[0],
            lazyframe=plan,
            global_scale=scale,
            threshold=threshold,
        )

    m, threshold, (rho, delta) = _calibrate(make, query, _shape_key(query, len(districts)), d_in)
    summary = _summary(m)
    # One measurement, invoked once, whose privacy map was checked against the query's loss.
    released = m(data.scan()).collect()
    columns = tuple(group_columns(query))
    stats = _statistics(query)
    cells: list[tuple[dict[str, Any], list[Estimate]]] = []
    ordered = released.sort(list(columns)) if columns else released
    for row in ordered.iter_rows(named=True):
        key = {c: row[c] for c in columns}
        estimates = []
        for name in stats:
            accuracy, distribution, scale = summary.get(name, (None, None, None))
            raw = row.get(name)
            estimates.append(
                Estimate(
                    statistic=name,
                    value=None if raw is None else float(raw),
                    accuracy_95=accuracy,
                    distribution=distribution,
                    scale=scale,
                )
            )
        cells.append((key, estimates))
    return Measured(group_columns=columns, cells=cells, rho=rho, delta=delta, threshold=threshold)
