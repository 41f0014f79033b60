"""The declarative analyst query: its JSON form, validation against hard limits, canonical hash.

A query names one metric over one stream in a half-open time range, grouped by any of
``district`` and one time bucket (``hour`` or ``day``), with explicit per-unit contribution bounds
and an explicit privacy loss (zCDP ``rho``; plus ``delta`` only when group keys are released
privately instead of taken from the public key sets).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

from analytics.data import DAY_NS, HOUR_NS
from analytics.errors import InvalidQuery

__all__ = [
    "GROUP_COLUMNS",
    "LIMITS",
    "METRICS",
    "Bounds",
    "Limits",
    "Metric",
    "Query",
    "parse_query",
]

Metric = Literal["count", "sum", "mean", "quantile", "histogram"]
METRICS: Final[tuple[Metric, ...]] = ("count", "sum", "mean", "quantile", "histogram")
GROUP_COLUMNS: Final[tuple[str, ...]] = ("district", "hour", "day")
KEY_MODES: Final[tuple[str, ...]] = ("public", "released")
_STREAM_RE: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class Limits:
    """Hard limits on one query (TigerBeetle style: everything has an upper bound)."""

    max_range_ns: int = 31 * DAY_NS
    max_rho: float = 1.0
    min_rho: float = 1e-6
    max_delta: float = 1e-5
    max_rows_per_cell: int = 10_000
    max_cells_per_unit: int = 10_000
    max_abs_value: float = 1e12
    max_quantiles: int = 9
    max_candidates: int = 1_000
    max_bins: int = 100
    max_cells: int = 100_000
    max_stream_chars: int = 64


LIMITS: Final = Limits()


@dataclass(frozen=True)
class Bounds:
    """Per-unit contribution bounds, enforced before any mechanism runs.

    rows_per_cell: rows one unit may contribute to one output cell (extra rows are dropped).
    cells_per_unit: output cells one unit may contribute to (extra cells are dropped).
    value_min/value_max: every value is clamped into this range (sum, mean, quantile, histogram).
    """

    rows_per_cell: int
    cells_per_unit: int
    value_min: float = 0.0
    value_max: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_per_cell": self.rows_per_cell,
            "cells_per_unit": self.cells_per_unit,
            "value_min": self.value_min,
            "value_max": self.value_max,
        }


@dataclass(frozen=True)
class Query:
    metric: Metric
    stream: str
    start_ns: int
    end_ns: int
    bounds: Bounds
    rho: float
    group_by: tuple[str, ...] = ()
    delta: float = 0.0
    keys: Literal["public", "released"] = "public"
    quantiles: tuple[float, ...] = ()
    candidates: tuple[float, ...] = ()
    bins: tuple[float, ...] = ()

    @property
    def time_bucket(self) -> str | None:
        for column in ("hour", "day"):
            if column in self.group_by:
                return column
        return None

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (what is hashed and stored with the release)."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "stream": self.stream,
            "group_by": list(self.group_by),
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "bounds": self.bounds.to_json(),
            "privacy": {"rho": self.rho, "delta": self.delta},
            "keys": self.keys,
        }
        if self.metric == "quantile":
            out["quantiles"] = list(self.quantiles)
            out["candidates"] = list(self.candidates)
        if self.metric == "histogram":
            out["bins"] = list(self.bins)
        return out

    def canonical_hash(self, dataset: str) -> str:
        """sha256 over the dataset name and the canonical JSON (sorted keys, no whitespace)."""
        body = json.dumps(
            {"dataset": dataset, "query": self.to_json()},
            sort_keys=True,
            separators=(",", ":"),
            allow_nan=False,
        )
        return "sha256:" + hashlib.sha256(body.encode()).hexdigest()

    def periods(self, period_ns: int = DAY_NS) -> list[int]:
        """Start of every budget period (UTC day by default) the query's time range touches."""
        first = self.start_ns // period_ns * period_ns
        return list(range(first, self.end_ns, period_ns))


def _fail(message: str) -> InvalidQuery:
    return InvalidQuery(message)


def _number(raw: Any, name: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _fail(f"{name} must be a number")
    value = float(raw)
    if not math.isfinite(value):
        raise _fail(f"{name} must be finite")
    return value


def _integer(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise _fail(f"{name} must be an integer")
    return raw


def _numbers(raw: Any, name: str, limit: int) -> tuple[float, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(f"{name} must be a list of numbers")
    if len(raw) > limit:
        raise _fail(f"{name} has {len(raw)} entries; the limit is {limit}")
    return tuple(_number(x, f"{name}[{i}]") for i, x in enumerate(raw))


def _even_candidates(lo: float, hi: float, n: int) -> tuple[float, ...]:
    step = (hi - lo) / (n - 1)
    return tuple(round(lo + i * step, 9) for i in range(n))


def parse_query(raw: Mapping[str, Any], limits: Limits = LIMITS) -> Query:
    """Validate a JSON object into a Query; raises InvalidQuery naming the first problem."""
    if not isinstance(raw, Mapping):
        raise _fail("query must be a JSON object")
    known = {
        "metric",
        "stream",
        "group_by",
        "start_ns",
        "end_ns",
        "bounds",
        "privacy",
        "keys",
        "quantiles",
        "candidates",
        "bins",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(f"unknown fields {unknown}")
    metric = raw.get("metric")
    if metric not in METRICS:
        raise _fail(f"metric must be one of {list(METRICS)}")
    stream = raw.get("stream")
    if not isinstance(stream, str) or len(stream) > limits.max_stream_chars or not _STREAM_RE.match(stream):
        raise _fail("stream must be a stream name like 'home.energy_kwh'")
    group_raw = raw.get("group_by", [])
    if not isinstance(group_raw, list) or not all(isinstance(g, str) for g in group_raw):
        raise _fail("group_by must be a list of column names")
    if len(set(group_raw)) != len(group_raw) or not set(group_raw) <= set(GROUP_COLUMNS):
        raise _fail(f"group_by must be distinct columns from {list(GROUP_COLUMNS)}")
    if "hour" in group_raw and "day" in group_raw:
        raise _fail("group_by may hold one time bucket: hour or day")
    group_by = tuple(c for c in GROUP_COLUMNS if c in group_raw)  # canonical order
    start_ns = _integer(raw.get("start_ns"), "start_ns")
    end_ns = _integer(raw.get("end_ns"), "end_ns")
    if not 0 <= start_ns < end_ns:
        raise _fail("need 0 <= start_ns < end_ns")
    if end_ns - start_ns > limits.max_range_ns:
        raise _fail(f"time range exceeds {limits.max_range_ns // DAY_NS} days")
    align = DAY_NS if "day" in group_by else HOUR_NS
    if start_ns % align or end_ns % align:
        raise _fail(
            f"start_ns and end_ns must be aligned to whole {'days' if align == DAY_NS else 'hours'} (UTC)"
        )

    bounds_raw = raw.get("bounds")
    if not isinstance(bounds_raw, Mapping):
        raise _fail("bounds must be an object")
    rows_per_cell = _integer(bounds_raw.get("rows_per_cell"), "bounds.rows_per_cell")
    cells_per_unit = _integer(bounds_raw.get("cells_per_unit", 1), "bounds.cells_per_unit")
    if not 1 <= rows_per_cell <= limits.max_rows_per_cell:
        raise _fail(f"bounds.rows_per_cell must be in [1, {limits.max_rows_per_cell}]")
    if not 1 <= cells_per_unit <= limits.max_cells_per_unit:
        raise _fail(f"bounds.cells_per_unit must be in [1, {limits.max_cells_per_unit}]")
    needs_values = metric in ("sum", "mean", "quantile", "histogram")
    value_min = _number(bounds_raw.get("value_min", 0.0), "bounds.value_min")
    value_max = _number(bounds_raw.get("value_max", 0.0), "bounds.value_max")
    if needs_values and not value_min < value_max:
        raise _fail("bounds need value_min < value_max for this metric")
    if max(abs(value_min), abs(value_max)) > limits.max_abs_value:
        raise _fail(f"value bounds exceed {limits.max_abs_value:g} in magnitude")
    if not needs_values:
        value_min = value_max = 0.0
    if not group_by and metric != "histogram":
        cells_per_unit = 1  # one cell; a histogram's bins are its cells even when ungrouped

    privacy = raw.get("privacy")
    if not isinstance(privacy, Mapping) or set(privacy) - {"rho", "delta"}:
        raise _fail("privacy must be an object with rho (and delta when keys are released)")
    rho = _number(privacy.get("rho"), "privacy.rho")
    if not limits.min_rho <= rho <= limits.max_rho:
        raise _fail(f"privacy.rho must be in [{limits.min_rho:g}, {limits.max_rho:g}]")
    keys = raw.get("keys", "public")
    if keys not in KEY_MODES:
        raise _fail(f"keys must be one of {list(KEY_MODES)}")
    delta = _number(privacy.get("delta", 0.0), "privacy.delta")
    if keys == "released":
        if "district" not in group_by:
            raise _fail("keys 'released' applies to district groupings only")
        if metric in ("quantile", "histogram"):
            raise _fail("keys 'released' supports count, sum and mean")
        if not 0.0 < delta <= limits.max_delta:
            raise _fail(f"keys 'released' needs privacy.delta in (0, {limits.max_delta:g}]")
    elif delta != 0.0:
        raise _fail("privacy.delta is only used when keys are released")

    quantiles: tuple[float, ...] = ()
    candidates: tuple[float, ...] = ()
    bins: tuple[float, ...] = ()
    if metric == "quantile":
        quantiles = _numbers(raw.get("quantiles", [0.5]), "quantiles", limits.max_quantiles)
        if (
            not quantiles
            or not all(0.0 < q < 1.0 and (q * 8).is_integer() for q in quantiles)
            or len(set(quantiles)) != len(quantiles)
        ):
            # OpenDP's quantile score sensitivity grows with the denominator of the quantile as
            # a fraction; eighths keep it small (0.5 is cheapest).
            raise _fail(
                "quantiles must be distinct multiples of 1/8 strictly between 0 and 1 (e.g. 0.25, 0.5)"
            )
        candidates = _numbers(raw.get("candidates"), "candidates", limits.max_candidates)
        if not candidates:
            candidates = _even_candidates(value_min, value_max, 101)
        if list(candidates) != sorted(set(candidates)) or len(candidates) < 2:
            raise _fail("candidates must be at least two strictly increasing numbers")
        if candidates[0] < value_min or candidates[-1] > value_max:
            raise _fail("candidates must lie within [value_min, value_max]")
    elif "quantiles" in raw or "candidates" in raw:
        raise _fail("quantiles/candidates apply to metric 'quantile' only")
    if metric == "histogram":
        bins = _numbers(raw.get("bins"), "bins", limits.max_bins + 1)
        if len(bins) < 2 or list(bins) != sorted(set(bins)):
            raise _fail("bins must be at least two strictly increasing edges")
        if bins[0] != value_min or bins[-1] != value_max:
            raise _fail("the first and last bin edges must equal value_min and value_max")
    elif "bins" in raw:
        raise _fail("bins apply to metric 'histogram' only")

    query = Query(
        metric=cast(Metric, metric),
        stream=stream,
        start_ns=start_ns,
        end_ns=end_ns,
        bounds=Bounds(rows_per_cell, cells_per_unit, value_min, value_max),
        rho=rho,
        group_by=group_by,
        delta=delta,
        keys=cast(Literal["public", "released"], keys),
        quantiles=quantiles,
        candidates=candidates,
        bins=bins,
    )
    return query


def count_cells(query: Query, n_districts: int) -> int:
    """Number of output cells with public keys (bounded by LIMITS.max_cells)."""
    cells = 1
    if "district" in query.group_by:
        cells *= n_districts
    bucket = query.time_bucket
    if bucket is not None:
        cells *= (query.end_ns - query.start_ns) // (HOUR_NS if bucket == "hour" else DAY_NS)
    if query.metric == "histogram":
        cells *= len(query.bins) - 1
    return cells
