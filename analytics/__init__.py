"""Differentially private city analytics with OpenDP: budgets, releases and the dashboard."""

from analytics.accountant import BudgetLine, BudgetPolicy, Cost
from analytics.data import Snapshot, load_readings, snapshot_of
from analytics.errors import AnalyticsError, BudgetExceeded, DataError, InvalidQuery, ReleaseNotFound
from analytics.measurements import epsilon_of_rho
from analytics.queries import Bounds, Query, parse_query
from analytics.releases import Release, release_csv
from analytics.service import Analytics, Outcome
from analytics.sources import (
    FrameSource,
    ReadingSource,
    SelectSource,
    consent_change_marker,
    consent_rewards_select,
)
from analytics.tables import create_schema

__all__ = [
    "Analytics",
    "AnalyticsError",
    "Bounds",
    "BudgetExceeded",
    "BudgetLine",
    "BudgetPolicy",
    "Cost",
    "DataError",
    "FrameSource",
    "InvalidQuery",
    "Outcome",
    "Query",
    "ReadingSource",
    "Release",
    "ReleaseNotFound",
    "SelectSource",
    "Snapshot",
    "consent_change_marker",
    "consent_rewards_select",
    "create_schema",
    "epsilon_of_rho",
    "load_readings",
    "parse_query",
    "release_csv",
    "snapshot_of",
]
