"""Snapshots kept in the process between queries, so releases and ad-hoc queries over the same
settled day share one load from SQL and one contribution bounding per bounds.

A kept snapshot is used again only while the source's change marker is unchanged (any consent
event, new reading or reward paid changes it: see `sources.consent_change_marker`) and for at
most ``ttl_s`` seconds (consent expiry and retention follow the clock, not writes). A source
without a change marker is never kept. Query ranges have ended (`Analytics.submit` refuses
others), so a kept snapshot covers settled data.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from analytics.data import Snapshot

__all__ = ["MarkedSource", "SnapshotCache"]

MAX_KEPT: Final = 4
MAX_KEPT_ROWS: Final = 20_000_000


@runtime_checkable
class MarkedSource(Protocol):
    def marker(self, start_ns: int, end_ns: int) -> Hashable | None:
        """A cheap value that changes whenever the readings of [start_ns, end_ns) may have; None: unknown."""
        ...


@dataclass(frozen=True)
class _Kept:
    streams: frozenset[str] | None  # None: all streams
    start_ns: int
    end_ns: int
    marker: Hashable
    loaded_ns: int
    snapshot: Snapshot

    def covers(self, streams: Sequence[str] | None, start_ns: int, end_ns: int) -> bool:
        if not (self.start_ns <= start_ns and end_ns <= self.end_ns):
            return False
        if self.streams is None:
            return True
        return streams is not None and set(streams) <= self.streams


class SnapshotCache:
    """At most MAX_KEPT snapshots (MAX_KEPT_ROWS rows together), least recently used dropped first.

    A dropped snapshot's files go once no query holds it any more (snapshots remove their files
    when garbage-collected).
    """

    def __init__(self, ttl_ns: int) -> None:
        if ttl_ns < 0:
            raise ValueError("ttl must not be negative")
        self.ttl_ns = ttl_ns
        self._lock = threading.Lock()
        self._kept: list[_Kept] = []

    def get(
        self, streams: Sequence[str] | None, start_ns: int, end_ns: int, marker: Hashable, now_ns: int
    ) -> Snapshot | None:
        with self._lock:
            self._kept = [k for k in self._kept if k.marker == marker and now_ns - k.loaded_ns < self.ttl_ns]
            for i, kept in enumerate(self._kept):
                if kept.covers(streams, start_ns, end_ns):
                    self._kept.append(self._kept.pop(i))
                    return kept.snapshot
        return None

    def put(
        self,
        snapshot: Snapshot,
        streams: Sequence[str] | None,
        start_ns: int,
        end_ns: int,
        marker: Hashable,
        now_ns: int,
    ) -> None:
        if self.ttl_ns == 0 or snapshot.rows > MAX_KEPT_ROWS:
            return
        kept = _Kept(
            None if streams is None else frozenset(streams), start_ns, end_ns, marker, now_ns, snapshot
        )
        with self._lock:
            self._kept.append(kept)
            while len(self._kept) > MAX_KEPT or sum(k.snapshot.rows for k in self._kept) > MAX_KEPT_ROWS:
                self._kept.pop(0)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
