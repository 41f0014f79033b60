"""Inclusion proofs by transfer id on both databases: leaf index from the checkpoints, the fallback
count, and the client-side check against a checkpoint root."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey

from ledger import (
    Account,
    CreateTransferStatus,
    Ledger,
    LedgerInvariantError,
    Transfer,
    TransferFlags,
    merkle,
    note,
)
from ledger.proofs import leaf_index_of, transfer_inclusion_proof, verify_transfer_inclusion
from ledger.tables import checkpoints, leaves

S = CreateTransferStatus
LOG_KEY = SigningKey(b"\x31" * 32)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * 1_000_000_000

    def __call__(self) -> int:
        self.now += 1_000
        return self.now


def t(tid: int, amount: int = 1, **kw: int) -> Transfer:
    return Transfer(id=tid, debit_account_id=kw.pop("dr", 1), credit_account_id=kw.pop("cr", 2), amount=amount,
                    ledger=1, code=1, **kw)  # fmt: skip


@pytest.fixture
def led(db_url: str) -> Iterator[Ledger]:
    with Ledger.open(db_url, signing_key=LOG_KEY, origin="proofs.example/ledger", clock=Clock()) as ledger:
        ledger.create_accounts([Account(id=i, ledger=1, code=1) for i in (1, 2, 3)])
        # Batches of several sizes with failed events in front, between and behind the committed
        # ones (they take timestamps but no leaves), two-phase transfers and a linked chain.
        batches = [
            ([t(1, 10), t(2, 20)], [S.CREATED, S.CREATED]),
            ([t(3, dr=9), t(4, 5), t(5, 5, flags=int(TransferFlags.PENDING))],
             [S.DEBIT_ACCOUNT_NOT_FOUND, S.CREATED, S.CREATED]),
            ([t(6, 1)], [S.CREATED]),
            ([t(2, 20), t(7, 1, flags=int(TransferFlags.LINKED)), t(8, 2), t(9, cr=99)],
             [S.EXISTS, S.CREATED, S.CREATED, S.CREDIT_ACCOUNT_NOT_FOUND]),
            ([Transfer(id=10, pending_id=5, amount=3, flags=TransferFlags.POST_PENDING_TRANSFER), t(11, 4)],
             [S.CREATED, S.CREATED]),
            ([t(100 + i) for i in range(300)], [S.CREATED] * 300),  # spans a cached Merkle node
            ([t(1, 10)], [S.EXISTS]),  # no leaves, no checkpoint
            ([t(12, 7, dr=3, cr=1)], [S.CREATED]),
        ]  # fmt: skip
        for batch, statuses in batches:
            assert [r.status for r in ledger.create_transfers(batch)] == statuses
        yield ledger


COMMITTED = [1, 2, 4, 5, 6, 7, 8, 10, 11, *range(100, 400), 12]


def test_every_transfer_proves_its_inclusion(led: Ledger) -> None:
    size = led.tree_size
    assert size == len(COMMITTED)
    cp = note.parse_checkpoint(note.verify_note(led.checkpoint(), [led.signer.verifier]).text)
    for index, tid in enumerate(COMMITTED):
        if 12 <= index < size - 2 and index % 17:
            continue  # every batch edge, and a sample of the big batch
        tp = transfer_inclusion_proof(led, tid)
        assert tp is not None and (tp.leaf_index, tp.tree_size) == (index, size), tid
        assert tp.leaf_hash == led.leaf_hash(index) == merkle.leaf_hash(tp.leaf)
        assert verify_transfer_inclusion(tp.transfer, tp.leaf_index, tp.tree_size, tp.proof, cp.root_hash)
        assert tp.checkpoint == led.stored_checkpoint(size)
    # A post carries the fields resolved from its pending transfer and the amount actually posted.
    post = transfer_inclusion_proof(led, 10)
    assert post is not None and (post.transfer.debit_account_id, post.transfer.amount) == (1, 3)


def test_proof_against_an_older_checkpoint(led: Ledger) -> None:
    tp = transfer_inclusion_proof(led, 8, tree_size=7)
    assert tp is not None and (tp.leaf_index, tp.tree_size) == (6, 7)
    old = note.parse_checkpoint(note.parse_note(tp.checkpoint or "").text)
    assert old.size == 7 and verify_transfer_inclusion(tp.transfer, 6, 7, tp.proof, old.root_hash)
    assert transfer_inclusion_proof(led, 8, tree_size=8) is not None
    no_checkpoint = transfer_inclusion_proof(led, 8, tree_size=8)  # mid-batch size: none stored
    assert no_checkpoint is not None and no_checkpoint.checkpoint is None
    with pytest.raises(merkle.ProofError):
        transfer_inclusion_proof(led, 8, tree_size=6)  # leaf 6 is not in a tree of 6 leaves
    with pytest.raises(merkle.ProofError):
        transfer_inclusion_proof(led, 8, tree_size=led.tree_size + 1)
    assert transfer_inclusion_proof(led, 3) is None  # failed: never committed, never a leaf
    assert transfer_inclusion_proof(led, 424242) is None


def test_client_check_refuses_a_changed_transfer_or_wrong_root(led: Ledger) -> None:
    tp = transfer_inclusion_proof(led, 11)
    assert tp is not None
    root = led.root(tp.tree_size)
    assert verify_transfer_inclusion(tp.transfer, tp.leaf_index, tp.tree_size, tp.proof, root)
    for changed in (replace(tp.transfer, amount=5), replace(tp.transfer, timestamp=tp.transfer.timestamp + 1),
                    replace(tp.transfer, credit_account_id=3)):  # fmt: skip
        assert not verify_transfer_inclusion(changed, tp.leaf_index, tp.tree_size, tp.proof, root)
    assert not verify_transfer_inclusion(tp.transfer, tp.leaf_index + 1, tp.tree_size, tp.proof, root)
    assert not verify_transfer_inclusion(tp.transfer, tp.leaf_index, tp.tree_size, tp.proof, led.root(7))


def test_checkpoints_give_the_leaf_index_with_at_most_one_batch_counted(led: Ledger) -> None:
    from ledger.proofs import _count_between, _leaf_index_by_checkpoints, _newest_checkpoint_before

    size = led.tree_size
    with led.engine.connect() as conn:
        for index, tid in enumerate(COMMITTED):
            (tr,) = led.lookup_transfers([tid])
            assert _leaf_index_by_checkpoints(conn, tr.timestamp, size) == index, tid
            base, base_ts = _newest_checkpoint_before(conn, tr.timestamp, size)
            assert index - base == _count_between(conn, base_ts, tr.timestamp) < 300  # within its batch
        assert _newest_checkpoint_before(conn, 0, size) == (0, -1)


def test_leaf_index_without_checkpoint_rows_and_with_wrong_ones(led: Ledger) -> None:
    """The checkpoints only speed the search up: sparse or misleading rows fall back to a count,
    and a log whose leaves do not match its transfers is reported."""
    expect = {tid: i for i, tid in enumerate(COMMITTED)}
    with led.engine.begin() as conn:
        conn.execute(checkpoints.delete().where(checkpoints.c.tree_size.in_([2, 7, 9])))
    for tid in (1, 2, 4, 8, 11, 150, 12):
        (tr,) = led.lookup_transfers([tid])
        assert leaf_index_of(led, tr) == expect[tid]
    with led.engine.begin() as conn:
        conn.execute(checkpoints.update().values(timestamp=checkpoints.c.timestamp - 10_000))
    for tid in (1, 8, 11, 12):
        (tr,) = led.lookup_transfers([tid])
        assert leaf_index_of(led, tr) == expect[tid]
    with led.engine.begin() as conn:
        conn.execute(checkpoints.delete())
    (tr,) = led.lookup_transfers([399])
    assert leaf_index_of(led, tr) == expect[399]
    with led.engine.begin() as conn:  # a leaf hash that does not match its transfer
        row = conn.execute(sa.select(leaves).order_by(leaves.c.first_leaf_index.desc()).limit(1)).one()
        conn.execute(
            leaves.update().where(leaves.c.first_leaf_index == row[0]).values(leaf_hashes=b"\x00" * 32)
        )
    (tr,) = led.lookup_transfers([12])
    with pytest.raises(LedgerInvariantError):
        leaf_index_of(led, tr)
