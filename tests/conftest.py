"""Shared fixtures: every storage test runs on SQLite, and on PostgreSQL when configured.

Set CIVITAS_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test) to add the
PostgreSQL run; each test then gets its own fresh schema, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from identity.sql import normalize_url, open_engine

PG_URL = os.environ.get("CIVITAS_TEST_DATABASE_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"
BACKENDS = ["sqlite", "postgresql"]


def _pg_reachable() -> str | None:
    if not PG_URL:
        return "CIVITAS_TEST_DATABASE_URL is not set"
    try:
        engine = sa.create_engine(normalize_url(PG_URL))
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # the reason is shown in the skip/failure
        return f"PostgreSQL at CIVITAS_TEST_DATABASE_URL is unreachable: {type(exc).__name__}: {exc}"
    return None


_PG_PROBLEM: str | None = None
_PG_PROBED = False


def pg_problem() -> str | None:
    global _PG_PROBED, _PG_PROBLEM
    if not _PG_PROBED:
        _PG_PROBLEM, _PG_PROBED = _pg_reachable(), True
    return _PG_PROBLEM


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and PG_URL and pg_problem():
        raise pytest.UsageError(f"CI=true but {pg_problem()}")


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'civitas.db'}"
        return
    problem = pg_problem()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = open_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()
