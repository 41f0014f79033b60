"""Where readings come from: a SQL Select per time range (the consent contract) or an in-memory frame."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import polars as pl
import sqlalchemy as sa

from analytics.data import READING_SCHEMA, load_readings, restrict

__all__ = [
    "REWARDS_STREAM",
    "FrameSource",
    "ReadingSource",
    "SelectSource",
    "consent_change_marker",
    "consent_rewards_select",
]

REWARDS_STREAM: Final = "rewards.paid"
MINUTE_NS: Final = 60_000_000_000

SelectFactory = Callable[[int, int], sa.Select[Any]]
ChangeMarker = Callable[[sa.Connection, int, int], Hashable]


class ReadingSource(Protocol):
    def load(self, *, streams: Sequence[str] | None, start_ns: int, end_ns: int) -> pl.DataFrame:
        """Readings (READING_SCHEMA) of some streams (None: all) with start_ns <= ts_ns < end_ns."""
        ...


@dataclass
class SelectSource:
    """Readings from SQL: each factory maps (start_ns, end_ns) to a Select with the reading columns.

    For the service: ``lambda s, e: consent.analytics_readings_select(recipient=..., purpose=...,
    start_ns=s, end_ns=e)``, optionally plus ``consent_rewards_select``. With a
    ``change_marker`` (e.g. ``consent_change_marker``) the service may keep a loaded snapshot
    for later queries while the marker is unchanged; without one every query loads afresh.
    """

    engine: sa.Engine
    factories: Sequence[SelectFactory] = field(default_factory=list)
    change_marker: ChangeMarker | None = None

    def marker(self, start_ns: int, end_ns: int) -> Hashable | None:
        if self.change_marker is None:
            return None
        with self.engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
            return self.change_marker(conn, start_ns, end_ns)

    def load(self, *, streams: Sequence[str] | None, start_ns: int, end_ns: int) -> pl.DataFrame:
        frames = [
            load_readings(
                self.engine,
                restrict(factory(start_ns, end_ns), streams=streams, start_ns=start_ns, end_ns=end_ns),
            )
            for factory in self.factories
        ]
        if not frames:
            return pl.DataFrame(schema=READING_SCHEMA)
        return pl.concat(frames) if len(frames) > 1 else frames[0]


@dataclass
class FrameSource:
    """Readings held in memory (tests, benchmark, demo)."""

    frame: pl.DataFrame

    def marker(self, start_ns: int, end_ns: int) -> Hashable | None:
        """The frame itself (by identity): replacing the frame changes the marker."""
        return _Identity(self.frame)

    def load(self, *, streams: Sequence[str] | None, start_ns: int, end_ns: int) -> pl.DataFrame:
        predicate = (pl.col("ts_ns") >= start_ns) & (pl.col("ts_ns") < end_ns)
        if streams is not None:
            predicate = predicate & pl.col("stream").is_in(sorted(set(streams)))
        return self.frame.filter(predicate).select(list(READING_SCHEMA))


class _Identity:
    """Equal only to a marker of the very same object (which it keeps alive, so ids never recur)."""

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def consent_change_marker(conn: sa.Connection, start_ns: int, end_ns: int) -> Hashable:
    """Changes with every consent event, every stored reading and every reward paid.

    Three index lookups: the last consent event, the last reading, the number of paid reward
    rows. Clock-driven changes (consent expiry, retention) do not move it; the service's
    snapshot TTL bounds how long those take to reach new releases.
    """
    from consent import tables as ct

    row = conn.execute(
        sa.select(
            sa.select(sa.func.max(ct.events.c.event_seq)).scalar_subquery(),
            sa.select(sa.func.max(ct.readings.c.id)).scalar_subquery(),
            sa.select(sa.func.count())
            .select_from(ct.batch_counts)
            .where(ct.batch_counts.c.reward_state == "paid")
            .scalar_subquery(),
        )
    ).one()
    return ("consent", row[0], row[1], row[2])


def consent_rewards_select(start_ns: int, end_ns: int) -> sa.Select[Any]:
    """Rewards paid for shared readings, shaped as readings of stream ``rewards.paid``.

    unit: the citizen's pseudonym (the batch count's unit), district ``city`` (batches carry no
    district), ts_ns: the batch's receipt minute, value: the reward in currency units.
    """
    from consent import tables as ct

    counts, batches = ct.batch_counts, ct.batches
    minute = (batches.c.received_ns // MINUTE_NS) * MINUTE_NS
    return (
        sa.select(
            counts.c.unit.label("unit"),
            sa.literal(REWARDS_STREAM, sa.String()).label("stream"),
            sa.literal("city", sa.String()).label("district"),
            minute.label("ts_ns"),
            (sa.cast(counts.c.reward_micros, sa.Float()) / 1_000_000.0).label("value"),
        )
        .select_from(counts.join(batches, batches.c.batch_id == counts.c.batch_id))
        .where(
            counts.c.reward_state == "paid",
            batches.c.received_ns >= start_ns,
            batches.c.received_ns < end_ns,
        )
    )
