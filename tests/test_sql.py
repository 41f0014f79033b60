"""The shared engine factory and 128-bit id type behave the same on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.sql import Id128, normalize_url

metadata = sa.MetaData()
things = sa.Table("things", metadata, sa.Column("id", Id128(), primary_key=True))


def test_normalize_url_maps_postgres_onto_psycopg() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_pragmas(tmp_path: object) -> None:
    from identity.sql import open_engine

    eng = open_engine(f"sqlite:///{tmp_path}/p.db")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    eng.dispose()


def test_id128_round_trips_the_whole_range(engine: sa.Engine) -> None:
    metadata.create_all(engine)
    values = [0, 1, (1 << 64) + 5, (1 << 128) - 1]
    with engine.begin() as conn:
        conn.execute(things.insert(), [{"id": v} for v in values])
    with engine.connect() as conn:
        got = sorted(conn.execute(sa.select(things.c.id)).scalars())
    assert got == values


@settings(max_examples=50)
@given(st.integers())
def test_id128_rejects_out_of_range(value: int) -> None:
    from sqlalchemy.dialects import sqlite

    if 0 <= value < 1 << 128:
        assert Id128().process_bind_param(value, sqlite.dialect()) == value.to_bytes(16, "big")
    else:
        try:
            Id128().process_bind_param(value, sqlite.dialect())
        except ValueError:
            return
        raise AssertionError("out-of-range id accepted")
