"""The demo's clock: one simulated UTC day that runs at real speed between jumps.

The service and the demo's clients share one `DayClock`. It starts at a morning hour of the
simulated day and only ever moves forward: between phases the demo jumps it ahead (readings of
the morning are sent once the clock has passed the morning, a withdrawal happens at lunchtime,
and so on), and in between it runs at real speed so token lifetimes and nonces behave as usual.

The simulated day is the UTC day before the day the demo runs: every simulated instant lies in
the past of the real clock, so nothing the service signs is ever "from the future" for a party
that checks times against the real clock.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

__all__ = ["HOUR_NS", "MINUTE_NS", "SECOND_NS", "DayClock", "simulated_day"]

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS


def simulated_day(today: dt.date | None = None) -> dt.date:
    """The day the demo simulates: yesterday (UTC)."""
    real_today = today or dt.datetime.now(dt.UTC).date()
    return real_today - dt.timedelta(days=1)


class DayClock:
    """Callable returning integer UTC nanoseconds on the simulated day (an `identity.sql.Clock`)."""

    def __init__(self, day: dt.date, start_offset_ns: int = 6 * HOUR_NS) -> None:
        if not 0 <= start_offset_ns < DAY_NS:
            raise ValueError("the start offset must lie within the day")
        self.day = day
        self.day_start_ns = (
            int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * SECOND_NS
        )
        self._lock = threading.Lock()
        self._base_ns = self.day_start_ns + start_offset_ns
        self._mono_ns = time.monotonic_ns()

    def __call__(self) -> int:
        with self._lock:
            return self._base_ns + (time.monotonic_ns() - self._mono_ns)

    def offset_ns(self) -> int:
        """Nanoseconds since the start of the simulated day."""
        return self() - self.day_start_ns

    def at(self, offset_ns: int) -> int:
        """The absolute time of an offset into the simulated day."""
        return self.day_start_ns + offset_ns

    def advance_to(self, offset_ns: int) -> int:
        """Jump forward to `offset_ns` into the day (never backwards); returns the new time."""
        with self._lock:
            now = self._base_ns + (time.monotonic_ns() - self._mono_ns)
            target = self.day_start_ns + offset_ns
            if target > now:
                self._base_ns = target
                self._mono_ns = time.monotonic_ns()
                return target
            return now
