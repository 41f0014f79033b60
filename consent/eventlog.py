"""The consent event log: an RFC 9162 Merkle log stored in SQL, with C2SP signed checkpoints.

Hashing, proofs and the frontier come from `ledger.merkle`, checkpoint bodies and note
signatures from `ledger.note` (one implementation for both logs). This module only stores what
they need: every perfect subtree hash (`consent_log_nodes`, level 0 = leaf hashes) and the
frontier of the current tree (`consent_log_head`), so an append costs O(log n) and a proof reads
O(log n) stored hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from consent import tables as t
from consent.sqlutil import insert_ignore
from ledger import merkle
from ledger.note import Checkpoint, NoteSigner, format_checkpoint, sign_note

__all__ = [
    "LOG_ORIGIN",
    "LogAppender",
    "checkpoint",
    "consistency_proof",
    "inclusion_proof",
    "open_for_append",
    "root",
    "size",
]

LOG_ORIGIN = "civitas.city/consent-events"


@dataclass
class LogAppender:
    """Appends leaves inside the caller's transaction; `flush` writes nodes and the new head."""

    conn: sa.Connection
    frontier: merkle.Frontier
    _nodes: list[dict[str, object]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.frontier.size

    def append(self, leaf: bytes) -> int:
        """Append one leaf (the logged bytes); returns its index."""
        index = self.frontier.size
        leaf_hash = merkle.leaf_hash(leaf)
        self._nodes.append({"level": 0, "idx": index, "hash": leaf_hash})
        self.frontier.append(
            leaf_hash, lambda level, idx, h: self._nodes.append({"level": level, "idx": idx, "hash": h})
        )
        return index

    def flush(self) -> None:
        if not self._nodes:
            return
        self.conn.execute(sa.insert(t.log_nodes), self._nodes)
        self.conn.execute(
            sa.update(t.log_head)
            .where(t.log_head.c.id == 1)
            .values(size=self.frontier.size, frontier=self.frontier.to_bytes())
        )
        self._nodes = []


def _head(conn: sa.Connection, *, lock: bool) -> tuple[int, bytes] | None:
    stmt = sa.select(t.log_head.c.size, t.log_head.c.frontier).where(t.log_head.c.id == 1)
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else (int(row.size), bytes(row.frontier))


def open_for_append(conn: sa.Connection) -> LogAppender:
    """Lock the log head (serialising appenders) and return an appender at the current size."""
    head = _head(conn, lock=True)
    if head is None:
        insert_ignore(conn, t.log_head, [{"id": 1, "size": 0, "frontier": b""}])
        head = _head(conn, lock=True)
        if head is None:
            raise RuntimeError("consent log head row is missing")
    return LogAppender(conn, merkle.Frontier.from_bytes(*head))


def size(conn: sa.Connection) -> int:
    head = _head(conn, lock=False)
    return 0 if head is None else head[0]


def _perfect(conn: sa.Connection) -> merkle.PerfectHash:
    def perfect(level: int, idx: int) -> bytes:
        h = conn.execute(
            sa.select(t.log_nodes.c.hash).where(t.log_nodes.c.level == level, t.log_nodes.c.idx == idx)
        ).scalar_one_or_none()
        if h is None:
            raise merkle.ProofError("subtree is not in the log")
        return bytes(h)

    return perfect


def root(conn: sa.Connection, tree_size: int | None = None) -> bytes:
    """The root hash of the log at `tree_size` (default: now)."""
    n = size(conn) if tree_size is None else tree_size
    if n == 0:
        return merkle.EMPTY_ROOT
    if n > size(conn):
        raise merkle.ProofError("tree size beyond the log")
    return merkle.subtree_root(0, n, _perfect(conn))


def inclusion_proof(conn: sa.Connection, index: int, tree_size: int) -> list[bytes]:
    if tree_size > size(conn):
        raise merkle.ProofError("tree size beyond the log")
    return merkle.inclusion_proof(index, tree_size, _perfect(conn))


def consistency_proof(conn: sa.Connection, old_size: int, new_size: int) -> list[bytes]:
    if new_size > size(conn):
        raise merkle.ProofError("tree size beyond the log")
    return merkle.consistency_proof(old_size, new_size, _perfect(conn))


def checkpoint(engine: sa.Engine, signer: NoteSigner, *, now_ns: int, origin: str = LOG_ORIGIN) -> str:
    """Sign (C2SP signed note) and store a checkpoint of the log as it is now."""
    with engine.begin() as conn:
        head = _head(conn, lock=True)
        n, frontier = head if head is not None else (0, b"")
        root_hash = merkle.Frontier.from_bytes(n, frontier).root()
        note = sign_note(format_checkpoint(Checkpoint(origin, n, root_hash)), signer)
        insert_ignore(
            conn,
            t.log_checkpoints,
            [{"size": n, "root_hash": root_hash, "note": note, "created_ns": now_ns}],
        )
        return note
