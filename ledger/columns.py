"""Accounts held as columns: the store's account cache, and what a plain batch changes.

A batch of 8190 transfers between random accounts touches about 16,000 accounts spread over a
large cache. Kept as one Python tuple per account, every pass over them (apply the batch, order
the history rows, write the balance rows, update the cache) chases pointers all over memory and
builds new tuples. Kept as int64 columns with a slot per account, each pass is a few array
operations. Both classes are also read-only `Mapping`s of account rows (tuples in `Account` field
order), so the event-by-event engine path reads them like any snapshot.

Every column value fits a signed 64-bit integer: balances are bounded by BALANCE_MAX (2^63 - 1),
flags by 16 bits, ledgers by 32 bits, timestamps and history sequence numbers by 2^63 - 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView, Mapping, Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "C_CP",
    "C_CPO",
    "C_DP",
    "C_DPO",
    "C_FLAGS",
    "C_HEAD",
    "C_LEDGER",
    "C_TS",
    "AccountChanges",
    "AccountTable",
    "Column",
    "positions",
]

Column = npt.NDArray[np.int64]
AccountRow = tuple[int, ...]  # as ledger.engine.AccountRow (that module imports this one)

# Rows of `AccountTable.cols`. The first five are what a batch may change (`AccountChanges.cols`).
C_DP, C_DPO, C_CP, C_CPO, C_FLAGS, C_LEDGER, C_TS, C_HEAD = range(8)
_CHANGING = 5
# Account row offsets of the values held in columns C_DP..C_TS.
_ROW_FIELDS = (1, 2, 3, 4, 10, 8, 11)


def positions(slots: Column, size: int) -> Column:
    """For every slot below `size`, its position in `slots` (distinct slots), or -1 if absent."""
    at = np.full(size, -1, np.int64)
    at[slots] = np.arange(len(slots))
    return at


def _row(static: AccountRow, changing: list[int]) -> AccountRow:
    """An account row from the row as put and the values of columns C_DP..C_FLAGS."""
    dp, dpo, cp, cpo, flags = changing
    r = static
    return (r[0], dp, dpo, cp, cpo, r[5], r[6], r[7], r[8], r[9], flags, r[11])


class AccountTable(Mapping[int, AccountRow]):
    """Accounts by id: a slot each, int64 columns of what changes (balances, flags) and what the
    batch path reads (ledger, timestamp, history head), and the rest of each row as loaded."""

    __slots__ = ("cols", "rows", "slots")

    def __init__(self) -> None:
        self.slots: dict[int, int] = {}  # account id -> slot
        self.rows: list[AccountRow] = []  # by slot: the row as put (its balances and flags are stale)
        self.cols: Column = np.zeros((8, 0), np.int64)

    @classmethod
    def of(cls, rows: Iterable[AccountRow], heads: Iterable[int] | None = None) -> AccountTable:
        table = cls()
        table.put(list(rows), heads)
        return table

    def put(self, rows: Sequence[AccountRow], heads: Iterable[int] | None = None) -> None:
        """Add accounts, or replace those already held, with their history heads (0 when None)."""
        if not rows:
            return
        slots = self.slots
        fresh = [r for r in rows if r[0] not in slots]
        if fresh:
            first = len(self.rows)
            need = first + len(fresh)
            if need > self.cols.shape[1]:
                grown = np.zeros((8, max(need, 2 * self.cols.shape[1], 1024)), np.int64)
                grown[:, :first] = self.cols[:, :first]
                self.cols = grown
            for k, r in enumerate(fresh, first):
                slots[r[0]] = k
            self.rows.extend(fresh)
        at = np.fromiter(map(slots.__getitem__, (r[0] for r in rows)), np.int64, len(rows))
        for c, f in enumerate(_ROW_FIELDS):
            self.cols[c, at] = [r[f] for r in rows]
        self.cols[C_HEAD, at] = 0 if heads is None else list(heads)
        for k, r in zip(at.tolist(), rows, strict=True):
            self.rows[k] = r

    def apply(self, changes: AccountChanges, heads: Column) -> None:
        """Take a batch's changes (computed against this table) and the accounts' new history heads."""
        self.cols[:_CHANGING, changes.slots] = changes.cols
        self.cols[C_HEAD, changes.slots] = heads

    def clear(self) -> None:
        self.slots.clear()
        self.rows.clear()
        self.cols = np.zeros((8, 0), np.int64)

    def head(self, account_id: int) -> int:
        return int(self.cols[C_HEAD, self.slots[account_id]])

    def __getitem__(self, account_id: int) -> AccountRow:
        slot = self.slots[account_id]
        return _row(self.rows[slot], self.cols[:_CHANGING, slot].tolist())

    def __contains__(self, account_id: object) -> bool:
        return account_id in self.slots

    def __iter__(self) -> Iterator[int]:
        return iter(self.slots)

    def __len__(self) -> int:
        return len(self.slots)

    def keys(self) -> KeysView[int]:
        return self.slots.keys()


class AccountChanges(Mapping[int, AccountRow]):
    """The new balances and flags of some accounts of a table: `cols[:, k]` holds C_DP..C_FLAGS of
    the account in `slots[k]` (each slot once). The rest of each row is the table's."""

    __slots__ = ("_at", "cols", "slots", "table")

    def __init__(self, table: AccountTable, slots: Column, cols: Column) -> None:
        self.table = table
        self.slots = slots
        self.cols = cols
        self._at: dict[int, int] | None = None  # account id -> position, built when first asked

    @classmethod
    def of(cls, table: AccountTable, rows: Mapping[int, AccountRow]) -> AccountChanges:
        """Changes given as rows; KeyError names an account the table does not hold."""
        slots = np.fromiter(map(table.slots.__getitem__, rows), np.int64, len(rows))
        cols = np.array([[r[f] for r in rows.values()] for f in _ROW_FIELDS[:_CHANGING]], np.int64)
        return cls(table, slots, cols.reshape(_CHANGING, len(rows)))

    def ids(self) -> list[int]:
        rows = self.table.rows
        return [rows[s][0] for s in self.slots.tolist()]

    def _positions(self) -> dict[int, int]:
        if self._at is None:
            self._at = {aid: k for k, aid in enumerate(self.ids())}
        return self._at

    def __getitem__(self, account_id: int) -> AccountRow:
        k = self._positions()[account_id]
        return _row(self.table.rows[int(self.slots[k])], self.cols[:, k].tolist())

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._positions()

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self.slots)
