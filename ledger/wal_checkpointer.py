"""Copy a SQLite ledger's write-ahead log back into the database off the writer's path.

In WAL mode a commit only appends to the log; copying the log's pages back into the database file
(a checkpoint) is left to whichever commit crosses `wal_autocheckpoint`, and that commit then waits
for the copy and an fsync of the database: the slowest batches of a busy ledger. A
`WalCheckpointer` runs PASSIVE checkpoints on its own connection and thread after commits
instead: SQLite lets them run beside a writer (they copy only frames no reader still needs and
never block a commit), and the thread waits on the disk without holding the GIL, so the copy
overlaps the next batch's work. The writer's automatic checkpoint stays as a backstop for a log
that grows faster than it is copied.
"""

from __future__ import annotations

import sqlite3
import threading

__all__ = ["WalCheckpointer"]


class WalCheckpointer:
    def __init__(self, path: str, *, min_events: int) -> None:
        """Checkpoint the database at `path` once commits since the last one hold `min_events`
        events (a proxy for the pages they appended: big batches call for a copy every few
        commits, small ones for one every few hundred)."""
        self._path = path
        self._min_events = min_events
        self._events = 0
        self._due = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # completed checkpoint runs (for tests and metrics)
        self.failures = 0

    def committed(self, events: int) -> None:
        """Called by the writer (one thread at a time) after a commit of `events` events."""
        self._events += events
        if self._events < self._min_events or self._closed:
            return
        self._events = 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-wal-checkpoint", daemon=True)
            self._thread.start()
        self._due.set()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._closed:
                    return
                try:
                    if conn is None:
                        conn = sqlite3.connect(self._path, isolation_level=None)
                        conn.execute("PRAGMA synchronous=FULL")  # fsync the database after a copy
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    # e.g. another process's checkpoint is running: a later commit asks again,
                    # and the writer's automatic checkpoint remains the backstop
                    self.failures += 1
                    continue
                self.checkpoints += 1
        finally:
            if conn is not None:
                conn.close()

    def close(self) -> None:
        self._closed = True
        self._due.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
