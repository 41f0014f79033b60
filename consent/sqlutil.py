"""Small SQL helpers shared by the consent storage modules (dialect-aware upserts, chunking)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["chunks", "insert_ignore", "read_connection"]

T = TypeVar("T")

# Keep IN-lists and multi-row statements well below every driver's parameter limit.
CHUNK = 500


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def insert_ignore(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT rows, skipping any whose primary key already exists (one statement per dialect)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table).on_conflict_do_nothing()
        conn.execute(pg, list(rows))
    else:
        lite = sqlite.insert(table).on_conflict_do_nothing()
        conn.execute(lite, list(rows))


def read_connection(engine: sa.Engine) -> sa.Connection:
    """A connection for read-only work (SQLite: a deferred transaction, no write lock)."""
    return engine.connect().execution_options(sqlite_begin="DEFERRED")
