"""The day's standard releases behind the public dashboard.

Each release is an ordinary declarative query over one UTC day, charged to the ``public``
analyst's budget (and the dataset's) like any other, stored in the release store, and re-served
for free on every later view of the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from analytics.data import DAY_NS
from analytics.queries import Query, parse_query
from analytics.service import Analytics, Outcome
from analytics.sources import REWARDS_STREAM

__all__ = [
    "PUBLIC_ANALYST",
    "STANDARD_RELEASES",
    "StandardRelease",
    "publish_day",
    "standard_queries",
    "standard_rho",
]

PUBLIC_ANALYST: Final = "public"


@dataclass(frozen=True)
class StandardRelease:
    key: str
    title: str
    description: str
    chart: Literal["district-hours", "bars", "hours"]
    statistic: Literal["count", "sum", "mean"]
    unit_label: str
    template: dict[str, Any]  # the query without its time range


STANDARD_RELEASES: Final[tuple[StandardRelease, ...]] = (
    StandardRelease(
        key="traffic_hourly",
        title="Traffic: connected-vehicle readings per district and hour",
        description="Location readings from citizens' vehicles, counted per district and hour.",
        chart="district-hours",
        statistic="count",
        unit_label="readings",
        template={
            "metric": "count",
            "stream": "vehicle.location",
            "group_by": ["district", "hour"],
            "bounds": {"rows_per_cell": 4, "cells_per_unit": 24},
            "privacy": {"rho": 0.1},
        },
    ),
    StandardRelease(
        key="traffic_daily",
        title="Traffic: connected-vehicle readings per district (whole day)",
        description="The same readings counted over the whole day.",
        chart="bars",
        statistic="count",
        unit_label="readings",
        template={
            "metric": "count",
            "stream": "vehicle.location",
            "group_by": ["district"],
            "bounds": {"rows_per_cell": 48, "cells_per_unit": 3},
            "privacy": {"rho": 0.05},
        },
    ),
    StandardRelease(
        key="energy",
        title="Energy: household electricity per district",
        description="Hourly smart-meter readings summed per district (kWh; each reading clamped to 0-5 kWh).",
        chart="bars",
        statistic="sum",
        unit_label="kWh",
        template={
            "metric": "sum",
            "stream": "home.energy_kwh",
            "group_by": ["district"],
            "bounds": {"rows_per_cell": 24, "cells_per_unit": 1, "value_min": 0.0, "value_max": 5.0},
            "privacy": {"rho": 0.05},
        },
    ),
    StandardRelease(
        key="air_quality",
        title="Air quality: mean PM2.5 at home sensors per district",
        description="Mean fine-particle concentration (µg/m³; readings clamped to 0-100).",
        chart="bars",
        statistic="mean",
        unit_label="µg/m³",
        template={
            "metric": "mean",
            "stream": "home.air_pm25",
            "group_by": ["district"],
            "bounds": {"rows_per_cell": 12, "cells_per_unit": 1, "value_min": 0.0, "value_max": 100.0},
            "privacy": {"rho": 0.05},
        },
    ),
    StandardRelease(
        key="rewards",
        title="Rewards paid to citizens for shared data, per hour",
        description="Micro-rewards paid city-wide per hour (currency units; each payment clamped to 0-0.1).",
        chart="hours",
        statistic="sum",
        unit_label="paid",
        template={
            "metric": "sum",
            "stream": REWARDS_STREAM,
            "group_by": ["hour"],
            "bounds": {"rows_per_cell": 2, "cells_per_unit": 4, "value_min": 0.0, "value_max": 0.1},
            "privacy": {"rho": 0.05},
        },
    ),
)


def standard_rho() -> float:
    """Total rho the standard releases of one day spend."""
    return sum(float(r.template["privacy"]["rho"]) for r in STANDARD_RELEASES)


def standard_queries(day_start_ns: int) -> list[tuple[StandardRelease, Query]]:
    if day_start_ns % DAY_NS:
        raise ValueError("day_start_ns must be a UTC midnight")
    return [
        (r, parse_query({**r.template, "start_ns": day_start_ns, "end_ns": day_start_ns + DAY_NS}))
        for r in STANDARD_RELEASES
    ]


def publish_day(analytics: Analytics, day_start_ns: int) -> list[tuple[StandardRelease, Outcome]]:
    """Release (or re-serve) the day's standard set from one shared snapshot of that day."""
    pairs = standard_queries(day_start_ns)
    outcomes = analytics.submit_many(
        [q for _, q in pairs], PUBLIC_ANALYST, start_ns=day_start_ns, end_ns=day_start_ns + DAY_NS
    )
    return [(spec, outcome) for (spec, _), outcome in zip(pairs, outcomes, strict=True)]
