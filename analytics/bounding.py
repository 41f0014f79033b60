"""Per-unit contribution bounds, applied once per snapshot and bounds, before any OpenDP plan.

A query's bounds say how much one privacy unit may contribute: at most ``rows_per_cell`` rows to
any one output cell and at most ``cells_per_unit`` cells. `bound_contributions` enforces them on a
snapshot's rows (time range first, then histogram bins, then the truncation) and returns a
`BoundedFrame`: only the cell columns and the value, no unit. The OpenDP plan over a bounded frame
does not truncate again; it is told the bounds through its privacy-unit descriptor instead
(`declared_bounds`), which is sound because the truncation is a per-unit map (one unit's kept rows
depend only on that unit's rows and its own random order), so adding or removing one citizen
changes the bounded frame by at most ``rows_per_cell`` rows in each of at most ``cells_per_unit``
cells. Snapshots keep the bounded frames they made (`bounded_snapshot`), so every release and
ad-hoc query with the same stream, range and bounds shares one truncation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from opendp.extras.polars import Bound

from analytics.data import DAY_NS, HOUR_NS, Snapshot
from analytics.errors import InvalidQuery
from analytics.queries import Query

__all__ = [
    "BoundedFrame",
    "BoundingKey",
    "bin_labels",
    "bound_contributions",
    "bound_rows",
    "bounded_snapshot",
    "bounding_key",
    "cell_columns",
    "declared_bounds",
]

_UNIT_SHIFT: Final = np.uint64(32)
_MAX_CELL_CODES: Final = 2**32  # cell codes share a 64-bit key with the 32-bit unit code


@dataclass(frozen=True)
class BoundingKey:
    """Everything the bounded rows of a query depend on (besides the snapshot)."""

    stream: str
    start_ns: int
    end_ns: int
    cells: tuple[str, ...]  # the output cell columns: any of district, hour, day, bin (in order)
    rows_per_cell: int
    cells_per_unit: int
    bins: tuple[float, ...] = ()  # histogram edges (bins are cut from the clamped value)

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.cells, "value")


def cell_columns(query: Query) -> tuple[str, ...]:
    return (*query.group_by, *(("bin",) if query.metric == "histogram" else ()))


def bounding_key(query: Query) -> BoundingKey:
    cells = cell_columns(query)
    return BoundingKey(
        stream=query.stream,
        start_ns=query.start_ns,
        end_ns=query.end_ns,
        cells=cells,
        rows_per_cell=query.bounds.rows_per_cell,
        cells_per_unit=query.bounds.cells_per_unit if cells else 1,
        bins=query.bins if query.metric == "histogram" else (),
    )


def declared_bounds(key: BoundingKey) -> list[Bound]:
    """OpenDP's description of what one unit can change in a bounded frame of `key`.

    Rows in total (by no column) and per cell, with the number of cells, for
    ``dp.unit_of(contributions=...)``; OpenDP derives every sensitivity from these.
    """
    total = Bound(by=[], per_group=key.rows_per_cell * key.cells_per_unit)
    if not key.cells:
        return [total]
    per_cell = Bound(by=list(key.cells), per_group=key.rows_per_cell, num_groups=key.cells_per_unit)
    return [total, per_cell]


@dataclass(frozen=True)
class BoundedFrame:
    """Rows after the contribution bounds of `key` (cell columns and value only; no unit).

    Made only by `bound_contributions`, which guarantees the bounds it names.
    """

    key: BoundingKey
    rows: int
    _frame: pl.DataFrame | None = field(default=None, repr=False)
    _path: Path | None = field(default=None, repr=False)

    def scan(self) -> pl.LazyFrame:
        if self._path is not None:
            if not self._path.exists():
                raise InvalidQuery("the bounded frame's snapshot is closed")
            return pl.scan_ipc(self._path, memory_map=True)
        if self._frame is None:
            raise RuntimeError("bounded frame without data")
        return self._frame.lazy()


def bin_labels(bins: tuple[float, ...]) -> list[str]:
    return [f"[{bins[i]:g}, {bins[i + 1]:g})" for i in range(len(bins) - 1)]


def _cell_codes(rows: pl.DataFrame, key: BoundingKey) -> np.ndarray:
    """An integer per row, ordered like the cell keys (district by name, times, bins by edge)."""
    codes = np.zeros(rows.height, dtype=np.uint64)
    radix = 1
    for column in reversed(key.cells):
        if column == "district":
            names = rows.get_column("district").unique().sort().to_list()
            code = rows.select(pl.col("district").cast(pl.Enum(names)).to_physical()).to_series()
            size = max(len(names), 1)
        elif column in ("hour", "day"):
            step = HOUR_NS if column == "hour" else DAY_NS
            first = key.start_ns // step * step
            code = rows.select((pl.col(column) - first) // step).to_series()
            size = (key.end_ns - first) // step + 1
        else:  # bin
            labels = bin_labels(key.bins)
            code = rows.select(pl.col("bin").cast(pl.Enum(labels)).to_physical()).to_series()
            size = len(labels)
        codes += code.to_numpy().astype(np.uint64) * np.uint64(radix)
        radix *= size
        if radix > _MAX_CELL_CODES:
            raise InvalidQuery("too many cells to bound contributions")
    return codes


def _kept(units: np.ndarray, cells: np.ndarray, rows_per_cell: int, cells_per_unit: int) -> np.ndarray:
    """Indexes of the rows kept: per unit the lowest `cells_per_unit` cells, per cell the first
    `rows_per_cell` rows in the given row order (a stable sort keeps that order within a cell)."""
    n = units.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = (units.astype(np.uint64) << _UNIT_SHIFT) | cells
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    index = np.arange(n)
    new_cell = np.empty(n, dtype=bool)
    new_cell[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_cell[1:])
    units_sorted = ordered >> _UNIT_SHIFT
    new_unit = np.empty(n, dtype=bool)
    new_unit[0] = True
    np.not_equal(units_sorted[1:], units_sorted[:-1], out=new_unit[1:])
    cell_start = np.maximum.accumulate(np.where(new_cell, index, 0))
    unit_start = np.maximum.accumulate(np.where(new_unit, index, 0))
    cells_seen = np.cumsum(new_cell)
    row_in_cell = index - cell_start
    cell_in_unit = cells_seen - cells_seen[unit_start]  # 0 for the unit's first (lowest) cell
    keep = (row_in_cell < rows_per_cell) & (cell_in_unit < cells_per_unit)
    return np.sort(order[keep])


def bound_rows(frame: pl.LazyFrame, key: BoundingKey, *, shuffle: bool = True) -> pl.DataFrame:
    """The rows of `frame` (snapshot columns) kept under `key`'s bounds, with their unit column.

    Rows outside the key's time range are dropped first, so they never use up a unit's quota.
    Per unit the lowest `cells_per_unit` cells are kept, and in each of them the first
    `rows_per_cell` rows in a uniformly random order: `shuffle` permutes the rows first; a
    snapshot's rows are already in random order within a unit, so `bounded_snapshot` skips it.
    """
    rows = frame.filter((pl.col("ts_ns") >= key.start_ns) & (pl.col("ts_ns") < key.end_ns))
    if key.bins:
        rows = rows.with_columns(
            pl.col("value")
            .clip(key.bins[0], key.bins[-1])
            .cut(list(key.bins[1:-1]), labels=bin_labels(key.bins), left_closed=True)
            .cast(pl.String)
            .alias("bin")
        )
    data = rows.select("unit", "ts_ns", *key.columns).collect()
    if shuffle and data.height > 1:
        data = data[np.random.default_rng().permutation(data.height)]
    units = data.get_column("unit").to_numpy()
    kept = _kept(units, _cell_codes(data, key), key.rows_per_cell, key.cells_per_unit)
    return data[kept]


def bound_contributions(
    frame: pl.LazyFrame, key: BoundingKey, *, directory: Path | None = None, shuffle: bool = True
) -> BoundedFrame:
    """`bound_rows` without the unit column, as a BoundedFrame (an Arrow IPC file in `directory`
    when given, which OpenDP plans scan without copying)."""
    bounded = bound_rows(frame, key, shuffle=shuffle).select(key.columns)
    if directory is None:
        return BoundedFrame(key=key, rows=bounded.height, _frame=bounded)
    path = directory / f"bounded-{uuid.uuid4().hex}.arrow"
    bounded.write_ipc(path, compression="uncompressed")
    return BoundedFrame(key=key, rows=bounded.height, _path=path)


def bounded_snapshot(snapshot: Snapshot, query: Query) -> BoundedFrame:
    """The query's bounded rows of `snapshot`, made once per snapshot and bounding key."""
    key = bounding_key(query)

    def make() -> BoundedFrame:
        return bound_contributions(
            snapshot.scan(key.stream), key, directory=snapshot.directory, shuffle=False
        )

    return snapshot.derived(key, make)
