"""One exception hierarchy for the analytics package (the HTTP layer maps each to a problem type)."""

from __future__ import annotations

__all__ = [
    "AnalyticsError",
    "BudgetExceeded",
    "DataError",
    "InvalidQuery",
    "ReleaseNotFound",
]


class AnalyticsError(Exception):
    """Base class of every error analytics raises on purpose."""


class InvalidQuery(AnalyticsError, ValueError):
    """The declarative query is malformed or outside the limits."""


class DataError(AnalyticsError):
    """The input readings do not have the expected shape or size."""


class ReleaseNotFound(AnalyticsError, LookupError):
    """No release with that id."""


class BudgetExceeded(AnalyticsError):
    """A query would overspend a privacy budget; nothing was charged or released.

    `remaining_rho` holds the remaining zCDP budget of every budget the query would charge
    (keys like ``"dataset readings 2026-11-20"`` / ``"analyst a1 2026-11-20"``).
    """

    def __init__(self, message: str, *, requested_rho: float, remaining_rho: dict[str, float]) -> None:
        super().__init__(message)
        self.requested_rho = requested_rho
        self.remaining_rho = remaining_rho
