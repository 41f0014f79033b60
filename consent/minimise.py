"""Data minimisation before storage: location to a named district, time to the minute.

A `DistrictGrid` splits a bounding box into rows x columns of named cells; a point outside the
box is in `OUTSIDE`. The default grid covers the city of Civitas with eight districts (2 rows of
4, north row first, west to east). Device ids and serials never reach the reading store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consent.records import MINUTE_NS

__all__ = ["DEFAULT_GRID", "OUTSIDE", "DistrictGrid", "minute_of"]

OUTSIDE = "Outside"


def minute_of(ts_ns: int) -> int:
    """The start of the UTC minute containing `ts_ns`."""
    return ts_ns - ts_ns % MINUTE_NS


@dataclass(frozen=True)
class DistrictGrid:
    """A rows x cols grid of named districts over [lat_min, lat_max) x [lon_min, lon_max)."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    rows: int
    cols: int
    names: tuple[str, ...]  # row-major, row 0 = northernmost
    _row_scale: float = field(init=False, repr=False, compare=False, default=0.0)
    _col_scale: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        if not (self.lat_min < self.lat_max and self.lon_min < self.lon_max):
            raise ValueError("empty bounding box")
        if self.rows < 1 or self.cols < 1 or len(self.names) != self.rows * self.cols:
            raise ValueError("the grid needs one name per cell")
        if len(set(self.names)) != len(self.names) or OUTSIDE in self.names:
            raise ValueError("district names must be unique and not the outside marker")
        if any(not n or len(n) > 64 for n in self.names):
            raise ValueError("district names are 1..64 characters")
        object.__setattr__(self, "_row_scale", self.rows / (self.lat_max - self.lat_min))
        object.__setattr__(self, "_col_scale", self.cols / (self.lon_max - self.lon_min))

    @property
    def districts(self) -> tuple[str, ...]:
        return (*self.names, OUTSIDE)

    def district_of(self, lat: float, lon: float) -> str:
        if not (self.lat_min <= lat < self.lat_max and self.lon_min <= lon < self.lon_max):
            return OUTSIDE
        row = int((self.lat_max - lat) * self._row_scale)
        col = int((lon - self.lon_min) * self._col_scale)
        if row >= self.rows:  # float rounding at the edges
            row = self.rows - 1
        if col >= self.cols:
            col = self.cols - 1
        return self.names[row * self.cols + col]

    def centre_of(self, district: str) -> tuple[float, float]:
        """The centre point of a district (for demos and tests)."""
        i = self.names.index(district)
        row, col = divmod(i, self.cols)
        lat = self.lat_max - (row + 0.5) * (self.lat_max - self.lat_min) / self.rows
        lon = self.lon_min + (col + 0.5) * (self.lon_max - self.lon_min) / self.cols
        return lat, lon

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DistrictGrid:
        """Build from configuration: {"bbox": [lat_min, lat_max, lon_min, lon_max], "rows", "cols", "names"}."""
        bbox: Sequence[float] = data["bbox"]
        if len(bbox) != 4 or not all(math.isfinite(float(v)) for v in bbox):
            raise ValueError("bbox is [lat_min, lat_max, lon_min, lon_max]")
        return cls(
            float(bbox[0]),
            float(bbox[1]),
            float(bbox[2]),
            float(bbox[3]),
            int(data["rows"]),
            int(data["cols"]),
            tuple(str(n) for n in data["names"]),
        )


DEFAULT_GRID = DistrictGrid(
    lat_min=48.10,
    lat_max=48.30,
    lon_min=16.20,
    lon_max=16.60,
    rows=2,
    cols=4,
    names=(
        "Northgate",
        "University",
        "Old Town",
        "Eastfield",
        "Harbour",
        "Market",
        "Riverside",
        "Hillcrest",
    ),
)
