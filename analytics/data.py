"""Loading consented readings into a private, columnar snapshot that OpenDP plans scan.

Input is any SQLAlchemy ``Select`` with the columns ``unit``, ``stream``, ``district``, ``ts_ns``,
``value`` (the contract of ``consent.analytics_readings_select``). The snapshot replaces each unit
by a dense integer code (the pseudonym itself never leaves this module), adds the public hour and
day buckets, drops rows whose value is not a finite number, and is written to an Arrow IPC file in
a private temporary directory. OpenDP plans scan that file, so no query serialises the data.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import numpy as np
import polars as pl
import sqlalchemy as sa

from analytics.errors import DataError

__all__ = [
    "DAY_NS",
    "FRAME_SCHEMA",
    "HOUR_NS",
    "MAX_SNAPSHOT_ROWS",
    "MAX_STREAMS",
    "READING_SCHEMA",
    "Snapshot",
    "load_readings",
    "restrict",
    "snapshot_of",
]

HOUR_NS: Final = 3_600_000_000_000
DAY_NS: Final = 24 * HOUR_NS
# A public upper bound on rows in one snapshot; OpenDP's float-sum analysis relies on it.
MAX_SNAPSHOT_ROWS: Final = 50_000_000

READING_SCHEMA: Final[dict[str, pl.DataType]] = {
    "unit": pl.String(),
    "stream": pl.String(),
    "district": pl.String(),
    "ts_ns": pl.Int64(),
    "value": pl.Float64(),
}

FRAME_SCHEMA: Final[dict[str, pl.DataType]] = {
    "unit": pl.UInt32(),
    "district": pl.String(),
    "ts_ns": pl.Int64(),
    "hour": pl.Int64(),
    "day": pl.Int64(),
    "value": pl.Float64(),
}


def restrict(
    select: sa.Select[tuple[object, ...]], *, streams: Sequence[str] | None, start_ns: int, end_ns: int
) -> sa.Select[tuple[object, ...]]:
    """Narrow a readings Select to some streams (None: all) and a half-open time range."""
    sub = select.subquery("readings")
    out = sa.select(sub.c.unit, sub.c.stream, sub.c.district, sub.c.ts_ns, sub.c.value).where(
        sub.c.ts_ns >= start_ns, sub.c.ts_ns < end_ns
    )
    if streams is not None:
        out = out.where(sub.c.stream.in_(sorted(set(streams))))
    return out


LOAD_BATCH_ROWS: Final = 200_000


def _driver_statement(conn: sa.Connection, select: sa.Select[tuple[object, ...]]) -> tuple[str, Any]:
    """The Select as driver SQL with bound parameters run through their SQLAlchemy types."""
    compiled = select.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processed: dict[str, Any] = {}
    for name, value in params.items():
        bind = compiled.binds.get(name)
        processor = None if bind is None else bind.type.bind_processor(conn.dialect)
        processed[name] = processor(value) if processor is not None else value
    if compiled.positional:
        return compiled.string, tuple(processed[n] for n in compiled.positiontup or ())
    return compiled.string, processed


def _checked_height(rows: int) -> None:
    if rows > MAX_SNAPSHOT_ROWS:
        raise DataError(f"more than {MAX_SNAPSHOT_ROWS} readings exceed the snapshot limit")


def _load_sqlite(conn: sa.Connection, select: sa.Select[tuple[object, ...]]) -> pl.DataFrame:
    sql, args = _driver_statement(conn, select)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, args)
        frames: list[pl.DataFrame] = []
        rows = 0
        while batch := cursor.fetchmany(LOAD_BATCH_ROWS):
            rows += len(batch)
            _checked_height(rows)
            frames.append(pl.DataFrame(batch, schema=READING_SCHEMA, orient="row"))
    finally:
        cursor.close()
    return pl.concat(frames) if frames else pl.DataFrame(schema=READING_SCHEMA)


def _load_postgresql(conn: sa.Connection, select: sa.Select[tuple[object, ...]]) -> pl.DataFrame:
    sql, args = _driver_statement(conn, select)
    buffer = io.BytesIO()
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT CSV)", args) as copy:
            for chunk in copy:
                buffer.write(chunk)
    finally:
        cursor.close()
    if buffer.tell() == 0:
        return pl.DataFrame(schema=READING_SCHEMA)
    buffer.seek(0)
    frame = pl.read_csv(buffer, has_header=False, new_columns=list(READING_SCHEMA), schema=READING_SCHEMA)
    _checked_height(frame.height)
    return frame


def load_readings(engine: sa.Engine, select: sa.Select[tuple[object, ...]]) -> pl.DataFrame:
    """Run a readings Select and return a frame with exactly READING_SCHEMA's columns and types.

    Rows stream through the database driver directly (a cursor on SQLite, COPY ... TO STDOUT on
    PostgreSQL): SQLAlchemy's per-row processing would dominate the dashboard's run time.
    """
    names = [c.name for c in select.selected_columns]
    if names != list(READING_SCHEMA):
        raise DataError(f"readings select must have the columns {list(READING_SCHEMA)} in order, not {names}")
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as conn:
        if conn.dialect.name == "sqlite":
            frame = _load_sqlite(conn, select)
        elif conn.dialect.name == "postgresql":
            frame = _load_postgresql(conn, select)
        else:
            frame = pl.read_database(select, connection=conn, schema_overrides=READING_SCHEMA)
            _checked_height(frame.height)
    return frame.select(list(READING_SCHEMA)).cast(READING_SCHEMA)  # type: ignore[arg-type]


T = TypeVar("T")

MAX_DERIVED: Final = 64  # derived frames (e.g. bounded rows) one snapshot keeps


@dataclass
class Snapshot:
    """Encoded readings, one Arrow IPC file per stream; `close()` removes them (or use `with`).

    A snapshot never changes once made, so frames derived from it (the bounded rows of a query)
    are kept with it (`derived`) and go with it.
    """

    files: dict[str, Path]
    rows: int
    _dir: Path = field(repr=False)

    def __post_init__(self) -> None:
        # Safety net: the files go when the snapshot is garbage-collected even if never closed.
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._lock = threading.Lock()
        self._derived: dict[Hashable, Any] = {}

    @property
    def streams(self) -> list[str]:
        return sorted(self.files)

    @property
    def directory(self) -> Path:
        """The snapshot's private directory (derived files may be written there)."""
        if not self._finalizer.alive:
            raise DataError("snapshot is closed")
        return self._dir

    def derived(self, key: Hashable, make: Callable[[], T]) -> T:
        """`make()`'s result, made once per key for this snapshot (the oldest of MAX_DERIVED goes)."""
        with self._lock:
            if key in self._derived:
                value: T = self._derived.pop(key)
                self._derived[key] = value  # most recently used last
                return value
        made = make()
        with self._lock:
            if key in self._derived:
                existing: T = self._derived[key]
                return existing
            while len(self._derived) >= MAX_DERIVED:
                self._derived.pop(next(iter(self._derived)))
            self._derived[key] = made
        return made

    def scan(self, stream: str) -> pl.LazyFrame:
        """One stream's rows (FRAME_SCHEMA), by unit, random within a unit; empty for an unknown stream."""
        path = self.files.get(stream)
        if path is None:
            return pl.LazyFrame(schema=FRAME_SCHEMA)
        if not path.exists():
            raise DataError("snapshot is closed")
        return pl.scan_ipc(path, memory_map=True)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


MAX_STREAMS: Final = 256


def snapshot_of(readings: pl.DataFrame, *, directory: str | os.PathLike[str] | None = None) -> Snapshot:
    """Encode readings (READING_SCHEMA columns) into per-stream snapshot files."""
    missing = [c for c in READING_SCHEMA if c not in readings.columns]
    if missing:
        raise DataError(f"readings lack columns {missing}")
    if readings.height > MAX_SNAPSHOT_ROWS:
        raise DataError(f"{readings.height} readings exceed the snapshot limit of {MAX_SNAPSHOT_ROWS}")
    encoded = (
        readings.lazy()
        .select(list(READING_SCHEMA))
        .cast(READING_SCHEMA)  # type: ignore[arg-type]
        .filter(
            pl.col("value").is_finite()
            & pl.col("unit").is_not_null()
            & pl.col("district").is_not_null()
            & pl.col("stream").is_not_null()
            & pl.col("ts_ns").is_not_null()
        )
        # A dense code per unit; the pseudonym itself goes no further.
        .with_columns(
            pl.col("unit").cast(pl.Categorical).to_physical().cast(pl.UInt32),
            (pl.col("ts_ns") // HOUR_NS * HOUR_NS).alias("hour"),
            (pl.col("ts_ns") // DAY_NS * DAY_NS).alias("day"),
        )
        .collect()
    )
    # Each stream's rows are grouped by unit (contiguous groups make the per-unit windows of the
    # contribution bounds cheaper) and in random order within a unit, so "the first k rows of a
    # unit in a cell" is a uniformly random sample of them: one sort on unit * 2^32 + random.
    noise = np.random.default_rng().integers(0, 2**32, encoded.height, dtype=np.uint64)
    encoded = encoded.with_columns(
        (pl.col("unit").cast(pl.UInt64) * (2**32) + pl.Series("_noise", noise, dtype=pl.UInt64)).alias(
            "_order"
        )
    )
    streams = encoded.get_column("stream").unique().to_list()
    if len(streams) > MAX_STREAMS:
        raise DataError(f"more than {MAX_STREAMS} streams in one snapshot")
    tmp = Path(tempfile.mkdtemp(prefix="civitas-analytics-", dir=directory))
    os.chmod(tmp, 0o700)
    files: dict[str, Path] = {}
    try:
        for index, (key, part) in enumerate(encoded.partition_by("stream", as_dict=True).items()):
            path = tmp / f"stream-{index:03d}.arrow"
            part.sort("_order").select(list(FRAME_SCHEMA)).write_ipc(path, compression="uncompressed")
            files[str(key[0])] = path
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Snapshot(files=files, rows=encoded.height, _dir=tmp)
