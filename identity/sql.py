"""SQL plumbing shared by every domain package (it sits at the bottom of the import chain).

One engine factory so SQLite and PostgreSQL are configured the same way everywhere, and one
column type for 128-bit ids: 16 raw bytes on SQLite, a native UUID on PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["Clock", "Id128", "normalize_url", "open_engine", "system_clock_ns"]

# A clock returns UTC Unix time in integer nanoseconds; domains take one as an argument.
Clock = Callable[[], int]

SQLITE_BUSY_TIMEOUT_MS = 30_000


def system_clock_ns() -> int:
    return time.time_ns()


def normalize_url(url: str) -> str:
    """Map plain `postgresql://` URLs onto the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def open_engine(url: str, *, synchronous_full: bool = True, **kwargs: Any) -> Engine:
    """Create an engine: SQLite in WAL mode with a busy timeout and foreign keys on, or PostgreSQL.

    `synchronous_full` keeps SQLite commits durable across power loss (the ledger acknowledges
    a batch only after its commit is on disk).
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        connect_args = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
        sync = "FULL" if synchronous_full else "NORMAL"

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # The sqlite3 driver's implicit BEGIN would defer the write lock; we issue
            # BEGIN IMMEDIATE ourselves so writers queue on the busy timeout instead of failing.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite+pysqlite://"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            # Read-only work may opt out with execution_options(sqlite_begin="DEFERRED").
            mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
            if mode not in ("IMMEDIATE", "DEFERRED"):
                raise ValueError(f"unknown sqlite_begin mode {mode!r}")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


class Id128(sa.types.TypeDecorator[int]):
    """A 128-bit unsigned id as a Python int; 16 big-endian bytes on SQLite, UUID on PostgreSQL."""

    impl = sa.LargeBinary(16)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.Uuid(as_uuid=True))
        return dialect.type_descriptor(sa.LargeBinary(16))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not 0 <= value < 1 << 128:
            raise ValueError("id out of the 128-bit range")
        if dialect.name == "postgresql":
            return uuid.UUID(int=value)
        return value.to_bytes(16, "big")

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, uuid.UUID):
            return value.int
        return int.from_bytes(value, "big")
