"""The WAL checkpointer: copies a SQLite log back into the database on its own thread, after enough
committed events, without ever failing the writer."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from identity.sql import open_engine
from ledger import Account, CreateTransferStatus, Ledger, Transfer
from ledger.types import BATCH_MAX
from ledger.wal_checkpointer import WalCheckpointer


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _wal_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer copies pages back
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(k, os.urandom(200)) for k in range(2000)])
    return conn


def test_copies_the_log_back_once_enough_events_committed(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    conn = _wal_database(db)
    before = db.stat().st_size
    ckpt = WalCheckpointer(str(db), min_events=100)
    try:
        ckpt.committed(99)  # below the threshold: no thread, nothing copied
        assert ckpt._thread is None and db.stat().st_size == before
        ckpt.committed(1)
        assert _wait_for(lambda: ckpt.checkpoints == 1)
        assert db.stat().st_size > before + 2000 * 200  # the rows now live in the database file
        # the count starts again after each checkpoint
        ckpt.committed(99)
        assert not ckpt._due.is_set() and ckpt.checkpoints == 1
        ckpt.committed(1)
        assert _wait_for(lambda: ckpt.checkpoints == 2)
        assert ckpt.failures == 0
    finally:
        ckpt.close()
        conn.close()
    ckpt.committed(1000)  # closed: no thread is started again
    assert ckpt._thread is None


def test_a_failing_checkpoint_is_counted_not_raised(tmp_path: Path) -> None:
    ckpt = WalCheckpointer(str(tmp_path / "missing" / "w.db"), min_events=1)
    try:
        ckpt.committed(1)
        assert _wait_for(lambda: ckpt.failures == 1)
        ckpt.committed(1)  # the thread lives on and tries again
        assert _wait_for(lambda: ckpt.failures == 2)
        assert ckpt.checkpoints == 0
    finally:
        ckpt.close()


def test_ledger_on_a_file_checkpoints_after_two_full_batches(tmp_path: Path) -> None:
    led = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        ckpt = led._checkpointer
        assert ckpt is not None
        led.create_accounts([Account(id=i, ledger=1, code=1) for i in (1, 2)])
        for b in range(2):
            results = led.create_transfers(
                [
                    Transfer(
                        id=b * BATCH_MAX + k + 1,
                        debit_account_id=1,
                        credit_account_id=2,
                        amount=1,
                        ledger=1,
                        code=1,
                    )
                    for k in range(BATCH_MAX)
                ]
            )
            assert all(r.status is CreateTransferStatus.CREATED for r in results)
            if b == 0:
                assert ckpt.checkpoints == 0
        assert _wait_for(lambda: ckpt.checkpoints >= 1)
        assert ckpt.failures == 0
        assert led.audit().ok
    finally:
        led.close()
    reopened = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    try:
        assert reopened.tree_size == 2 * BATCH_MAX
        assert [a.credits_posted for a in reopened.lookup_accounts([2])] == [2 * BATCH_MAX]
    finally:
        reopened.close()


def test_memory_and_shared_engines_have_no_checkpointer(tmp_path: Path) -> None:
    """Only `Ledger.open` raises the writer's automatic checkpoint threshold, so only its ledgers
    hand checkpoints to a thread; a service's shared engine keeps SQLite's default."""
    led = Ledger.open("sqlite://")
    try:
        assert led._checkpointer is None
    finally:
        led.close()
    engine = open_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    try:
        assert Ledger(engine)._checkpointer is None
    finally:
        engine.dispose()
