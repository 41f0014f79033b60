"""Inclusion proofs by transfer id: where a committed transfer sits in the Merkle log, and the
RFC 9162 proof that it is there.

Leaf *i* of the log is the *i*-th committed transfer in timestamp order, so a transfer's leaf index
is the number of transfers committed before it. Counting them all would read the whole table;
instead the stored checkpoints are used as an index: the checkpoint of size S signed at ledger
time L covers exactly the transfers with timestamp <= L (every later batch starts after L). A
binary search over checkpoint sizes (O(log n) key lookups) finds the newest checkpoint signed
before the transfer; the transfers between it and the transfer are counted (at most one batch
when every batch stored its checkpoint). The result is checked against the stored leaf hash; if
it disagrees, the full count decides, and if that disagrees too the log is inconsistent.

`verify_transfer_inclusion` is the client side: recompute the leaf from the transfer's fields and
verify the audit path against a root the client trusts (e.g. from a cosigned checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from . import merkle
from .codec import encode_transfer
from .tables import checkpoints, transfers
from .types import LedgerInvariantError, Transfer

if TYPE_CHECKING:
    from .store import Ledger

__all__ = ["TransferProof", "leaf_index_of", "transfer_inclusion_proof", "verify_transfer_inclusion"]


@dataclass(frozen=True, slots=True)
class TransferProof:
    transfer: Transfer
    leaf_index: int
    tree_size: int
    leaf: bytes  # the transfer's 128-byte canonical encoding
    leaf_hash: bytes
    proof: tuple[bytes, ...]  # RFC 9162 audit path, leaf side first
    checkpoint: str | None  # the signed checkpoint the ledger stored for `tree_size`, if any


def _read(ledger: Ledger) -> sa.Connection:
    return ledger.engine.connect().execution_options(sqlite_begin="DEFERRED")


def _count_between(conn: sa.Connection, after_ts: int, before_ts: int) -> int:
    """Committed transfers with after_ts < timestamp < before_ts."""
    t = transfers.c.timestamp
    q = sa.select(sa.func.count()).select_from(transfers).where(t > after_ts, t < before_ts)
    return int(conn.execute(q).scalar_one())


def _newest_checkpoint_before(conn: sa.Connection, ts: int, max_size: int) -> tuple[int, int]:
    """(size, ledger time) of the largest stored checkpoint signed before `ts`; (0, -1) if none.

    Checkpoint times grow with their sizes, so a binary search over sizes finds it."""
    c = checkpoints.c
    best = (0, -1)
    lo, hi = 1, max_size
    while lo <= hi:
        mid = (lo + hi) // 2
        row = conn.execute(
            sa.select(c.tree_size, c.timestamp).where(c.tree_size >= mid).order_by(c.tree_size).limit(1)
        ).first()
        if row is None or int(row[0]) > hi or int(row[1]) >= ts:
            hi = mid - 1
        else:
            best = (int(row[0]), int(row[1]))
            lo = best[0] + 1
    return best


def _leaf_index_by_checkpoints(conn: sa.Connection, ts: int, size: int) -> int:
    """The leaf index of the transfer stamped `ts`, if the checkpoint rows are right."""
    base, base_ts = _newest_checkpoint_before(conn, ts, size)
    return base + _count_between(conn, base_ts, ts)


def leaf_index_of(ledger: Ledger, transfer: Transfer) -> int:
    """The leaf index of a committed transfer (as returned by `lookup_transfers`)."""
    want = merkle.leaf_hash(encode_transfer(transfer.as_row()))
    size = ledger.tree_size
    stored = ledger.leaf_index(transfer.timestamp)  # kept with the transfer's block: one key lookup
    if stored is not None and stored < size and ledger.leaf_hash(stored) == want:
        return stored
    with _read(ledger) as conn:
        index = _leaf_index_by_checkpoints(conn, transfer.timestamp, size)
        if index < size and ledger.leaf_hash(index) == want:
            return index
        index = _count_between(conn, -1, transfer.timestamp)  # checkpoint rows disagree: count all
    if index < size and ledger.leaf_hash(index) == want:
        return index
    raise LedgerInvariantError(f"transfer {transfer.id} is not at leaf {index} of the log")


def transfer_inclusion_proof(
    ledger: Ledger, transfer_id: int, tree_size: int | None = None
) -> TransferProof | None:
    """Inclusion proof of transfer `transfer_id` in the log at `tree_size` (default: the current
    size); None if no such transfer. Raises `merkle.ProofError` if the tree of that size does not
    hold the transfer or exceeds the log."""
    found = ledger.lookup_transfers([transfer_id])
    if not found:
        return None
    t = found[0]
    index = leaf_index_of(ledger, t)
    size = ledger.tree_size if tree_size is None else tree_size
    if not index < size:
        raise merkle.ProofError(f"the tree of size {size} does not hold leaf {index} (this transfer)")
    proof = ledger.inclusion_proof(index, size)
    leaf = encode_transfer(t.as_row())
    return TransferProof(
        transfer=t,
        leaf_index=index,
        tree_size=size,
        leaf=leaf,
        leaf_hash=merkle.leaf_hash(leaf),
        proof=tuple(proof),
        checkpoint=ledger.stored_checkpoint(size),
    )


def verify_transfer_inclusion(
    transfer: Transfer, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff `proof` shows this transfer (all its fields, as committed) at `leaf_index` of the
    tree of `tree_size` leaves whose root is `root`."""
    leaf = merkle.leaf_hash(encode_transfer(transfer.as_row()))
    return merkle.verify_inclusion(leaf, leaf_index, tree_size, proof, root)
