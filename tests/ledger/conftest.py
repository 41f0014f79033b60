"""Shared ledger fixtures: a settable clock and a ledger on the `db_url` database (SQLite or PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from nacl.signing import SigningKey

from ledger import Ledger

NS = 1_000_000_000
KEY = SigningKey(bytes(range(32)))
ORIGIN = "test.example/ledger"


class FakeClock:
    """Nanoseconds a test sets by hand (`clock.now += ...`)."""

    def __init__(self, start_ns: int = 1_700_000_000 * NS) -> None:
        self.now = start_ns
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def led(db_url: str, clock: FakeClock) -> Iterator[Ledger]:
    ledger = Ledger.open(db_url, signing_key=KEY, origin=ORIGIN, clock=clock)
    try:
        yield ledger
    finally:
        ledger.close()
