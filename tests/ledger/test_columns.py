"""Accounts as columns (ledger/columns.py): the mapping view, changes, and the plain path over them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import engine as eng
from ledger.columns import C_DPO, AccountChanges, AccountTable, positions
from ledger.types import BALANCE_MAX, ID_MAX, LedgerInvariantError

from .test_engine import _same, setup, tr

balance = st.integers(0, BALANCE_MAX)
account_rows = st.lists(
    st.tuples(
        st.integers(1, ID_MAX - 1),  # id
        balance, balance, balance, balance,  # debits/credits pending/posted
        st.integers(0, ID_MAX - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1),  # user data
        st.integers(1, 2**32 - 1), st.integers(1, 2**16 - 1), st.integers(0, 2**16 - 1),  # ledger, code, flags
        st.integers(1, 2**63 - 1),  # timestamp
    ),
    max_size=40,
    unique_by=lambda r: r[0],
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(account_rows, account_rows)
def test_a_table_reads_back_every_row_put_into_it(
    first: list[eng.AccountRow], later: list[eng.AccountRow]
) -> None:
    table = AccountTable.of(first, range(len(first)))
    table.put(later)  # replaces the rows with the same id, adds the others (heads 0)
    expected = {r[0]: r for r in first} | {r[0]: r for r in later}
    assert dict(table.items()) == expected
    assert table == expected
    assert len(table) == len(expected) and set(table.keys()) == expected.keys()
    replaced = {r[0] for r in later}
    for k, r in enumerate(first):
        assert table.head(r[0]) == (0 if r[0] in replaced else k)
    assert 0 not in table and table.get(0) is None
    table.clear()
    assert len(table) == 0 and table.get(first[0][0] if first else 1) is None


def test_a_table_grows_past_its_first_capacity() -> None:
    rows = [(i, 0, i, 0, 0, 0, 0, 0, 1, 1, 0, 10 + i) for i in range(1, 3000)]
    table = AccountTable()
    for k in range(0, len(rows), 700):
        table.put(rows[k : k + 700])
    assert table.cols.shape[1] >= len(rows)
    assert [table[i][2] for i in (1, 1024, 1025, 2999)] == [1, 1024, 1025, 2999]


def test_changes_read_as_rows_and_apply_to_their_table() -> None:
    table = AccountTable.of([(7, 0, 0, 0, 0, 5, 6, 7, 1, 2, 0, 100), (9, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 101)])
    changes = AccountChanges.of(table, {9: (9, 1, 2, 3, 4, 0, 0, 0, 1, 2, 8, 101)})
    assert dict(changes) == {9: (9, 1, 2, 3, 4, 0, 0, 0, 1, 2, 8, 101)}
    assert 9 in changes and 7 not in changes and len(changes) == 1
    assert table[9] == (9, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 101)  # untouched until applied
    table.apply(changes, np.array([42]))
    assert table[9] == (9, 1, 2, 3, 4, 0, 0, 0, 1, 2, 8, 101) and table.head(9) == 42
    assert table[7] == (7, 0, 0, 0, 0, 5, 6, 7, 1, 2, 0, 100) and table.head(7) == 0
    with pytest.raises(KeyError):
        AccountChanges.of(table, {8: (8, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 102)})


def test_the_plain_path_over_a_table_matches_the_event_by_event_path() -> None:
    m = setup()
    m.create_transfers([tr(1, dr=1, cr=4, amount=100)])
    events = [tr(10 + k, dr=[1, 2, 4][k % 3], cr=[2, 1, 1][k % 3], amount=k % 5 + 1) for k in range(60)]
    table = AccountTable.of(m.accounts.values())  # the snapshot's accounts as the store passes them
    before = table.cols.copy()
    snap = eng.TransferSnapshot(table, dict(m.transfers), dict(m.pending), dict(m.failed), (), m.last_ts)
    base = eng.batch_timestamp(m.now, m.last_ts)
    plain, exact = eng._plain_transfers(snap, events, base), eng._transfers_in_order(snap, events, base)
    assert plain is not None and plain.sides is not None
    _same(plain, exact)
    assert isinstance(plain.accounts, AccountChanges) and plain.accounts.table is table
    debit_slots, credit_slots = plain.sides
    assert [table.rows[s][0] for s in debit_slots.tolist()] == [e.debit_account_id for e in events]
    assert [table.rows[s][0] for s in credit_slots.tolist()] == [e.credit_account_id for e in events]
    assert np.array_equal(table.cols, before)  # the engine changed nothing in the table itself


def test_changes_that_break_an_invariant_are_refused() -> None:
    table = AccountTable.of([(1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 10), (2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 11)])
    slots = np.array([0, 1])
    balanced = np.zeros((5, 2), np.int64)
    balanced[C_DPO, 0] = 5
    balanced[3, 1] = 5  # credits posted of account 2
    eng._check_changes(table, AccountChanges(table, slots, balanced))
    unbalanced = balanced.copy()
    unbalanced[3, 1] = 4
    with pytest.raises(LedgerInvariantError, match="moved by different amounts"):
        eng._check_changes(table, AccountChanges(table, slots, unbalanced))
    negative = balanced.copy()
    negative[0, 0] = -1
    with pytest.raises(LedgerInvariantError, match="out of range"):
        eng._check_changes(table, AccountChanges(table, slots, negative))


def test_positions_map_each_slot_to_its_place_and_others_to_minus_one() -> None:
    at = positions(np.array([4, 1, 6]), 8)
    assert at.tolist() == [-1, 1, -1, -1, 0, -1, 2, -1]
