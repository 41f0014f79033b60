"""A synthetic city day of readings, shaped exactly like the consented analytics readings.

Columns: ``unit`` (privacy unit: citizen pseudonym, or device id for public sensors), ``stream``,
``district``, ``ts_ns`` (minute-truncated), ``value``. Used by tests, the benchmark and demos; it
holds no real person's data.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl
import sqlalchemy as sa

from analytics.data import READING_SCHEMA

__all__ = [
    "DISTRICTS",
    "MINUTE_NS",
    "synthetic_day",
    "synthetic_readings_table",
    "write_readings",
]

MINUTE_NS: Final = 60_000_000_000
DAY_MINUTES: Final = 24 * 60
DISTRICTS: Final[tuple[str, ...]] = ("centre", "harbour", "north", "east", "south", "west")


def synthetic_day(
    day_start_ns: int,
    *,
    citizens: int = 1_000,
    readings: int = 100_000,
    districts: tuple[str, ...] = DISTRICTS,
    seed: int = 0,
) -> pl.DataFrame:
    """About `readings` rows for one UTC day: vehicle trips, home energy, home air, public air, rewards.

    Citizens live in one district and drive in up to three; public air sensors (`sensor-*` units)
    report every few minutes. Proportions: ~40% vehicle locations, ~24% home energy, ~6% home air,
    ~28% public air quality, ~2% rewards.
    """
    if citizens < 1 or readings < 100:
        raise ValueError("need at least one citizen and 100 readings")
    rng = np.random.default_rng(seed)
    n_districts = len(districts)
    home = rng.integers(0, n_districts, citizens)
    names = np.array([f"citizen-{seed}-{i:06d}" for i in range(citizens)], dtype=object)
    district_names = np.array(districts, dtype=object)
    frames: list[pl.DataFrame] = []

    def frame(
        units: np.ndarray, stream: str, district: np.ndarray, minute: np.ndarray, value: np.ndarray
    ) -> None:
        frames.append(
            pl.DataFrame(
                {
                    "unit": pl.Series(units, dtype=pl.String),
                    "stream": pl.Series([stream] * len(units), dtype=pl.String),
                    "district": pl.Series(district, dtype=pl.String),
                    "ts_ns": pl.Series(day_start_ns + minute.astype(np.int64) * MINUTE_NS, dtype=pl.Int64),
                    "value": pl.Series(value, dtype=pl.Float64),
                }
            )
        )

    # Vehicle locations: rush-hour heavy, mostly the home district, sometimes a neighbour.
    n = int(readings * 0.40)
    who = rng.integers(0, citizens, n)
    hour = np.clip(rng.normal(np.where(rng.random(n) < 0.5, 8.0, 17.5), 2.2), 0, 23.99)
    minute = (hour * 60).astype(np.int64)
    where = np.where(rng.random(n) < 0.7, home[who], (home[who] + rng.integers(1, 3, n)) % n_districts)
    frame(names[who], "vehicle.location", district_names[where], minute, rng.random(n))
    # Home energy: one reading per citizen-hour, evening peak.
    n = int(readings * 0.24)
    who = rng.integers(0, citizens, n)
    hour_i = rng.integers(0, 24, n)
    kwh = np.clip(0.3 + 0.5 * np.exp(-((hour_i - 19) ** 2) / 8) + rng.gamma(2.0, 0.08, n), 0, 5)
    frame(names[who], "home.energy_kwh", district_names[home[who]], hour_i * 60, kwh)
    # Home air quality.
    n = int(readings * 0.06)
    who = rng.integers(0, citizens, n)
    frame(
        names[who],
        "home.air_pm25",
        district_names[home[who]],
        rng.integers(0, DAY_MINUTES, n),
        rng.gamma(3.0, 3.0, n),
    )
    # Public air-quality sensors: a few per district, the harbour is dirtier.
    sensors = max(n_districts * 3, citizens // 50)
    sensor_district = np.arange(sensors) % n_districts
    sensor_names = np.array([f"sensor-{seed}-{i:04d}" for i in range(sensors)], dtype=object)
    n = int(readings * 0.28)
    which = rng.integers(0, sensors, n)
    base = 8.0 + 4.0 * sensor_district[which]
    frame(
        sensor_names[which],
        "city.air_pm25",
        district_names[sensor_district[which]],
        rng.integers(0, DAY_MINUTES, n),
        rng.gamma(4.0, base / 4.0),
    )
    # Rewards paid for shared data (currency units).
    n = readings - sum(len(f) for f in frames)
    who = rng.integers(0, citizens, n)
    frame(
        names[who],
        "rewards.paid",
        district_names[home[who]],
        rng.integers(0, DAY_MINUTES, n),
        np.round(rng.gamma(2.0, 0.01, n), 6),
    )
    return pl.concat(frames).select(READING_SCHEMA.keys()).cast(READING_SCHEMA)  # type: ignore[arg-type]


def synthetic_readings_table(metadata: sa.MetaData, name: str = "synthetic_readings") -> sa.Table:
    """A table with exactly the analytics reading columns (for tests and the benchmark)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
    )


def write_readings(
    engine: sa.Engine, table: sa.Table, frame: pl.DataFrame, *, batch_rows: int = 50_000
) -> None:
    """Bulk-insert a readings frame (Core executemany in batches)."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    columns = list(READING_SCHEMA)
    for offset in range(0, frame.height, batch_rows):
        rows = frame.slice(offset, batch_rows).select(columns).to_dicts()
        with engine.begin() as conn:
            conn.execute(sa.insert(table), rows)
