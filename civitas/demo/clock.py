"""The demo's clock: one simulated UTC day that runs at real speed between jumps.

The service and the demo's clients share one `DayClock`. It starts at a morning hour of the
simulated day and only ever moves forward: between phases the demo jumps it ahead (readings of
the morning are sent once the clock has passed the morning, a withdrawal happens at lunchtime,
and so on), and in between it runs at real speed so token lifetimes and nonces behave as usual.

The simulated day is the UTC day before the day the demo runs: every simulated instant lies in
the past of the real clock, so nothing the service signs is ever "from the future" for a party
that checks times against the real clock.

The service runs in another process, so the clock lives in a small memory-mapped file: the
difference between simulated time and the system-wide monotonic clock, guarded by a sequence
counter (a seqlock: the one writer makes the counter odd while it writes; readers retry on an
odd or changed counter).
"""

from __future__ import annotations

import datetime as dt
import mmap
import os
import struct
import threading
import time
from pathlib import Path

__all__ = ["DAY_NS", "HOUR_NS", "MINUTE_NS", "SECOND_NS", "DayClock", "simulated_day"]

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 60 * MINUTE_NS
DAY_NS = 24 * HOUR_NS
_LAYOUT = struct.Struct("<Qqq")  # sequence, simulated - monotonic (ns), start of the day (ns)
_SEQ = struct.Struct("<Q")
_DELTA = struct.Struct("<q")


def simulated_day(today: dt.date | None = None) -> dt.date:
    """The day the demo simulates: yesterday (UTC)."""
    real_today = today or dt.datetime.now(dt.UTC).date()
    return real_today - dt.timedelta(days=1)


def _day_start_ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * SECOND_NS


class DayClock:
    """Callable returning integer UTC nanoseconds on the simulated day (an `identity.sql.Clock`).

    `DayClock.create(path, day)` makes the shared file (the demo, the only writer);
    `DayClock.attach(path)` opens it read-only in the service's process.
    """

    def __init__(self, path: Path, mm: mmap.mmap, *, writable: bool) -> None:
        self.path = path
        self._mm = mm
        self._writable = writable
        self._lock = threading.Lock()
        self.day_start_ns: int = _LAYOUT.unpack_from(mm, 0)[2]
        self.day = dt.datetime.fromtimestamp(self.day_start_ns // SECOND_NS, dt.UTC).date()

    @classmethod
    def create(cls, path: Path, day: dt.date, start_offset_ns: int = 6 * HOUR_NS) -> DayClock:
        if not 0 <= start_offset_ns < DAY_NS:
            raise ValueError("the start offset must lie within the day")
        start = _day_start_ns(day)
        path.write_bytes(_LAYOUT.pack(0, start + start_offset_ns - time.monotonic_ns(), start))
        fd = os.open(path, os.O_RDWR)
        try:
            mm = mmap.mmap(fd, _LAYOUT.size)
        finally:
            os.close(fd)
        return cls(path, mm, writable=True)

    @classmethod
    def attach(cls, path: Path) -> DayClock:
        fd = os.open(path, os.O_RDONLY)
        try:
            mm = mmap.mmap(fd, _LAYOUT.size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        return cls(path, mm, writable=False)

    def _delta(self) -> int:
        mm = self._mm
        while True:
            before = _SEQ.unpack_from(mm, 0)[0]
            if before & 1:
                continue
            delta: int = _DELTA.unpack_from(mm, 8)[0]
            if _SEQ.unpack_from(mm, 0)[0] == before:
                return delta

    def __call__(self) -> int:
        return time.monotonic_ns() + self._delta()

    def offset_ns(self) -> int:
        """Nanoseconds since the start of the simulated day."""
        return self() - self.day_start_ns

    def at(self, offset_ns: int) -> int:
        """The absolute time of an offset into the simulated day."""
        return self.day_start_ns + offset_ns

    def advance_to(self, offset_ns: int) -> int:
        """Jump forward to `offset_ns` into the day (never backwards); returns the new time."""
        if not self._writable:
            raise PermissionError("this process only reads the demo clock")
        with self._lock:
            now = self()
            target = self.day_start_ns + offset_ns
            if target <= now:
                return now
            seq = _SEQ.unpack_from(self._mm, 0)[0]
            _SEQ.pack_into(self._mm, 0, seq + 1)
            _DELTA.pack_into(self._mm, 8, target - time.monotonic_ns())
            _SEQ.pack_into(self._mm, 0, seq + 2)
            return target

    def close(self) -> None:
        self._mm.close()
