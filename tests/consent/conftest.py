"""Consent fixtures on the shared `engine` (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from consent.gateway import Gateway
from consent.store import ConsentStore
from consent.tables import create_schema

from .support import Clock, receipt_signer


@pytest.fixture
def cengine(engine: sa.Engine) -> sa.Engine:
    create_schema(engine)
    return engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(cengine: sa.Engine, clock: Clock) -> ConsentStore:
    return ConsentStore(cengine, signer=receipt_signer(), clock=clock)


@pytest.fixture
def gateway(cengine: sa.Engine, clock: Clock) -> Gateway:
    return Gateway(cengine, clock=clock)
