"""Where readings come from: a SQL Select per time range (the consent contract) or an in-memory frame."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    "consent_rewards_select",
]

REWARDS_STREAM: Final = "rewards.paid"
MINUTE_NS: Final = 60_000_000_000

SelectFactory = Callable[[int, int], sa.Select[Any]]


class ReadingSource(Protocol):
    def load(self, *, streams: Sequence[str] | None, start_ns: int, end_ns: int) -> pl.DataFrame:
        """Readings (READING_SCHEMA) of some streams (None: all) with start_ns <= ts_ns < end_ns."""
        ...


@dataclass
class SelectSource:
    """Readings from SQL: each factory maps (start_ns, end_ns) to a Select with the reading columns.

    For the service: ``lambda s, e: consent.analytics_readings_select(recipient=..., purpose=...,
    start_ns=s, end_ns=e)``, optionally plus ``consent_rewards_select``.
    """

    engine: sa.Engine
    factories: Sequence[SelectFactory] = field(default_factory=list)

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

    def load(self, *, streams: Sequence[str] | None, start_ns: int, end_ns: int) -> pl.DataFrame:
        predicate = (pl.col("ts_ns") >= start_ns) & (pl.col("ts_ns") < end_ns)
        if streams is not None:
            predicate = predicate & pl.col("stream").is_in(sorted(set(streams)))
        return self.frame.filter(predicate).select(list(READING_SCHEMA))


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
