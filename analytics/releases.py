"""Release documents (JSON and CSV) and the release store.

A release holds only aggregates: group keys (public), the noisy values OpenDP released, OpenDP's
95% accuracy for each, clearly labelled post-processing (clamping, rounding, ratios), and the
privacy parameters. It never holds units, rows or exact values.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Final

import sqlalchemy as sa

from analytics.accountant import Cost, period_label
from analytics.errors import ReleaseNotFound
from analytics.measurements import ALPHA, CONVERSION_DELTA, Estimate, Measured, epsilon_of_rho
from analytics.queries import Query
from analytics.tables import charges, releases

__all__ = [
    "PRIVACY_UNIT",
    "Release",
    "build_release",
    "find_by_hash",
    "get_release",
    "iso_ns",
    "list_releases",
    "release_csv",
    "store_release",
]

PRIVACY_UNIT: Final = "one citizen: all readings of all of their devices (a public sensor is its own unit)"
MAX_LIST: Final = 500


@dataclass(frozen=True)
class Release:
    id: str
    dataset: str
    query_hash: str
    analyst: str
    created_ns: int
    body: dict[str, Any]


def iso_ns(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _estimate_json(e: Estimate, query: Query) -> dict[str, Any]:
    out: dict[str, Any] = {
        "statistic": e.statistic,
        "value": _clean(e.value),
        "accuracy_95": _clean(e.accuracy_95),
        "distribution": e.distribution,
        "scale": _clean(e.scale),
    }
    if e.value is None:
        out["display"] = None
        out["postprocessing"] = "no value"
    elif e.statistic == "count":
        out["value"] = int(e.value)
        out["display"] = max(0, int(e.value))
        out["postprocessing"] = "display: clamped at 0"
    elif e.statistic == "sum":
        lo_sum = min(0.0, query.bounds.value_min)
        out["display"] = round(max(e.value, lo_sum) if query.bounds.value_min >= 0 else e.value, 3)
        out["postprocessing"] = (
            "display: clamped at 0, rounded to 3 decimals"
            if query.bounds.value_min >= 0
            else ("display: rounded to 3 decimals")
        )
    else:  # quantiles: a candidate chosen by the exponential mechanism
        out["display"] = e.value
        out["postprocessing"] = "none (the value is one of the public candidates)"
        out["accuracy_note"] = "OpenDP states no additive accuracy for quantile selection"
    return out


def _mean(estimates: Sequence[Estimate], query: Query) -> dict[str, Any] | None:
    by = {e.statistic: e for e in estimates}
    total, count = by.get("sum"), by.get("count")
    if total is None or count is None or total.value is None or count.value is None:
        return None
    lo, hi = query.bounds.value_min, query.bounds.value_max
    out: dict[str, Any] = {
        "statistic": "mean",
        "value": None,
        "accuracy_95": None,
        "distribution": None,
        "scale": None,
        "display": None,
        "interval_90": None,
        "postprocessing": (
            "mean = noisy sum / noisy count, clamped into the value bounds; interval_90 combines the "
            "sum and count 95% accuracies (union bound, at least 90% confidence)"
        ),
    }
    if count.value >= 1:
        mean = min(max(total.value / count.value, lo), hi)
        out["value"] = mean
        out["display"] = round(mean, 3)
        if total.accuracy_95 is not None and count.accuracy_95 is not None:
            n_lo, n_hi = count.value - count.accuracy_95, count.value + count.accuracy_95
            s_lo, s_hi = total.value - total.accuracy_95, total.value + total.accuracy_95
            if n_lo > 0:
                candidates = [s_lo / n_lo, s_lo / n_hi, s_hi / n_lo, s_hi / n_hi]
                # Clamp both ends into the value bounds (the mean itself is clamped the same way).
                out["interval_90"] = [min(max(lo, min(candidates)), hi), max(min(hi, max(candidates)), lo)]
            else:
                out["interval_90"] = [lo, hi]
    return out


def _key_json(key: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column, value in key.items():
        out[column] = iso_ns(int(value)) if column in ("hour", "day") and value is not None else value
    return out


def build_release(
    *,
    release_id: str,
    dataset: str,
    query: Query,
    query_hash: str,
    analyst: str,
    created_ns: int,
    measured: Measured,
    cost: Cost,
) -> dict[str, Any]:
    """The release document (JSON-ready)."""
    cells: list[dict[str, Any]] = []
    for key, estimates in measured.cells:
        rows = [_estimate_json(e, query) for e in estimates]
        if query.metric == "mean":
            mean = _mean(estimates, query)
            if mean is not None:
                rows.insert(0, mean)
        cells.append({**_key_json(key), "estimates": rows})
    epsilon = epsilon_of_rho(measured.rho, CONVERSION_DELTA)
    privacy = {
        "unit": PRIVACY_UNIT,
        "definition": "zero-concentrated differential privacy (zCDP)"
        + (", approximate (delta) for the released keys" if query.keys == "released" else ""),
        "rho": measured.rho,
        "delta": measured.delta,
        "epsilon": epsilon,
        "epsilon_delta": measured.delta + CONVERSION_DELTA,
        "conversion": f"rho-zCDP implies (epsilon, {CONVERSION_DELTA:g})-DP by OpenDP's zCDP-to-approxDP "
        "conversion; a key-release delta adds to it",
        "charged_rho": cost.rho,
        "charged_delta": cost.delta,
        "periods": [period_label(p) for p in cost.periods],
        "bounds": query.bounds.to_json(),
        "truncation": "rows beyond rows_per_cell per unit and cell (a random sample is kept) and cells beyond "
        "cells_per_unit per unit (lowest keys kept) are dropped before aggregation; values are clamped "
        "into [value_min, value_max]",
        "keys": "public key set"
        if query.keys == "public"
        else f"released with threshold {measured.threshold}",
        "threshold": measured.threshold,
        "accuracy": f"accuracy_95: the released value is within this distance of the bounded exact value "
        f"with probability {1 - ALPHA:.0%} (OpenDP summarize, alpha={ALPHA})",
        "mechanisms": "OpenDP " + version("opendp") + ": discrete Gaussian (counts), Gaussian (sums), "
        "exponential mechanism (quantiles)",
    }
    return {
        "id": release_id,
        "dataset": dataset,
        "query": query.to_json(),
        "query_hash": query_hash,
        "requested_by": analyst,
        "created_ns": created_ns,
        "created": iso_ns(created_ns),
        "privacy": privacy,
        "columns": list(measured.group_columns),
        "cells": cells,
    }


def new_release_id() -> tuple[int, str]:
    raw = secrets.randbits(128)
    return raw, str(uuid.UUID(int=raw))


def store_release(conn: sa.Connection, release: Release, cost: Cost) -> None:
    """Insert a release and its charges (inside the charging transaction)."""
    raw_id = uuid.UUID(release.id).int
    conn.execute(
        sa.insert(releases).values(
            id=raw_id,
            dataset=release.dataset,
            query_hash=release.query_hash,
            analyst=release.analyst,
            created_ns=release.created_ns,
            rho_nano=cost.rho_nano,
            delta_pico=cost.delta_pico,
            body=json.dumps(release.body, separators=(",", ":"), allow_nan=False),
        )
    )
    conn.execute(
        sa.insert(charges),
        [
            {
                "release_id": raw_id,
                "period_start_ns": p,
                "dataset": release.dataset,
                "analyst": release.analyst,
                "rho_nano": cost.rho_nano,
                "delta_pico": cost.delta_pico,
            }
            for p in cost.periods
        ],
    )


def _from_row(row: sa.RowMapping) -> Release:
    return Release(
        id=str(uuid.UUID(int=int(row["id"]))),
        dataset=str(row["dataset"]),
        query_hash=str(row["query_hash"]),
        analyst=str(row["analyst"]),
        created_ns=int(row["created_ns"]),
        body=json.loads(row["body"]),
    )


def find_by_hash(conn: sa.Connection, query_hash: str) -> Release | None:
    row = conn.execute(sa.select(releases).where(releases.c.query_hash == query_hash)).mappings().first()
    return None if row is None else _from_row(row)


def get_release(conn: sa.Connection, release_id: str) -> Release:
    try:
        raw = uuid.UUID(release_id).int
    except ValueError as exc:
        raise ReleaseNotFound(f"no release {release_id!r}") from exc
    row = conn.execute(sa.select(releases).where(releases.c.id == raw)).mappings().first()
    if row is None:
        raise ReleaseNotFound(f"no release {release_id!r}")
    return _from_row(row)


def list_releases(
    conn: sa.Connection, *, analyst: str | None = None, limit: int = 100, before_ns: int | None = None
) -> list[Release]:
    """Newest first; at most `limit` (<= 500)."""
    if not 1 <= limit <= MAX_LIST:
        raise ValueError(f"limit must be in [1, {MAX_LIST}]")
    stmt = sa.select(releases).order_by(releases.c.created_ns.desc(), releases.c.query_hash).limit(limit)
    if analyst is not None:
        stmt = stmt.where(releases.c.analyst == analyst)
    if before_ns is not None:
        stmt = stmt.where(releases.c.created_ns < before_ns)
    return [_from_row(r) for r in conn.execute(stmt).mappings()]


CSV_FIELDS: Final = (
    "statistic",
    "value",
    "display",
    "accuracy_95",
    "interval_90_low",
    "interval_90_high",
    "distribution",
    "scale",
    "postprocessing",
)


def release_csv(body: dict[str, Any]) -> str:
    """One row per (cell, statistic), with the release's privacy parameters on every row."""
    columns = list(body["columns"])
    privacy = body["privacy"]
    header = ["release_id", *columns, *CSV_FIELDS, "rho", "epsilon", "epsilon_delta", "delta"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for cell in body["cells"]:
        for e in cell["estimates"]:
            interval = e.get("interval_90") or [None, None]
            writer.writerow(
                [
                    body["id"],
                    *[cell.get(c) for c in columns],
                    e["statistic"],
                    e["value"],
                    e["display"],
                    e["accuracy_95"],
                    interval[0],
                    interval[1],
                    e["distribution"],
                    e["scale"],
                    e["postprocessing"],
                    privacy["rho"],
                    privacy["epsilon"],
                    privacy["epsilon_delta"],
                    privacy["delta"],
                ]
            )
    return out.getvalue()
