"""The pure double-entry engine: a snapshot of the touched state and a batch in, results and changes out.

No I/O happens here. The store loads exactly the rows a batch touches into a snapshot, calls
`create_accounts` / `create_transfers`, and writes the returned changes back in one transaction.
Rows are plain tuples of ints (fields in `Account` / `Transfer` order) to keep the hot path lean.

Semantics follow TigerBeetle (see specs/ledger.md): results in precedence order, linked chains
all-or-nothing, idempotent ids (EXISTS / EXISTS_WITH_DIFFERENT_*), transient failures burn the id
(ID_ALREADY_FAILED), two-phase transfers with partial post, void and deterministic expiry,
balancing and closing transfers, strictly increasing timestamps assigned here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, eq, itemgetter
from typing import cast

import numpy as np

from .columns import (
    C_CP,
    C_CPO,
    C_DP,
    C_DPO,
    C_FLAGS,
    C_HEAD,
    C_LEDGER,
    AccountChanges,
    AccountTable,
    Column,
    positions,
)
from .types import (
    ACCOUNT_FLAGS_SUPPORTED,
    AMOUNT_MAX,
    BALANCE_MAX,
    BATCH_MAX,
    ID_MAX,
    TRANSFER_FLAGS_SUPPORTED,
    TRANSIENT_TRANSFER_STATUSES,
    U16_MAX,
    U32_MAX,
    U64_MAX,
    Account,
    AccountFlags,
    BatchTooLargeError,
    CreateAccountResult,
    CreateAccountStatus,
    CreateTransferResult,
    CreateTransferStatus,
    LedgerInvariantError,
    LedgerValueError,
    PendingState,
    Transfer,
    TransferFlags,
)

__all__ = [
    "AccountOutcome",
    "AccountRow",
    "AccountSnapshot",
    "BalanceRow",
    "PendingRow",
    "TransferOutcome",
    "TransferRow",
    "TransferSnapshot",
    "batch_timestamp",
    "check_account_invariants",
    "create_accounts",
    "create_transfers",
]

AccountRow = tuple[int, ...]  # (id, debits_pending, debits_posted, credits_pending, credits_posted,
#                                user_data_128, user_data_64, user_data_32, ledger, code, flags, timestamp)
TransferRow = tuple[int, ...]  # (id, debit_account_id, credit_account_id, amount, pending_id, user_data_128,
#                                 user_data_64, user_data_32, timeout, ledger, code, flags, timestamp)
PendingRow = tuple[int, int, int, int]  # (transfer id, PendingState, expires_at_ns or 0, resolved_at_ns or 0)
BalanceRow = tuple[int, int, int, int, int, int, int]  # (account id, transfer timestamp, side: 0 debit /
#   1 credit, debits_pending, debits_posted, credits_pending, credits_posted) right after that transfer

# Account row offsets.
A_DP, A_DPO, A_CP, A_CPO, A_LEDGER, A_CODE, A_FLAGS, A_TS = 1, 2, 3, 4, 8, 9, 10, 11
# Transfer row offsets.
T_DR, T_CR, T_AMT, T_PID, T_U128, T_U64, T_U32, T_TIMEOUT, T_LEDGER, T_CODE, T_FLAGS, T_TS = range(1, 13)

_LINKED = int(TransferFlags.LINKED)
_PENDING = int(TransferFlags.PENDING)
_POST = int(TransferFlags.POST_PENDING_TRANSFER)
_VOID = int(TransferFlags.VOID_PENDING_TRANSFER)
_BAL_DR = int(TransferFlags.BALANCING_DEBIT)
_BAL_CR = int(TransferFlags.BALANCING_CREDIT)
_CLOSE_DR = int(TransferFlags.CLOSING_DEBIT)
_CLOSE_CR = int(TransferFlags.CLOSING_CREDIT)
_TRANSFER_RESERVED = ~TRANSFER_FLAGS_SUPPORTED
_ACCOUNT_RESERVED = ~ACCOUNT_FLAGS_SUPPORTED
_DMNEC = int(AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS)
_CMNED = int(AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS)
_CLOSED = int(AccountFlags.CLOSED)
_A_LINKED = int(AccountFlags.LINKED)
_HISTORY = int(AccountFlags.HISTORY)
_NS = 1_000_000_000

S = CreateTransferStatus
_CREATED = S.CREATED
_ST_PENDING = int(PendingState.PENDING)
_ST_POSTED = int(PendingState.POSTED)
_ST_VOIDED = int(PendingState.VOIDED)
_ST_EXPIRED = int(PendingState.EXPIRED)


def batch_timestamp(now_ns: int, last_timestamp: int) -> int:
    """Timestamp of a batch's first event: the clock, but always after every earlier timestamp."""
    return max(now_ns, last_timestamp + 1)


# --------------------------------------------------------------------------------------------
# Accounts


@dataclass(slots=True)
class AccountSnapshot:
    accounts: Mapping[int, AccountRow]  # existing accounts among the batch's ids
    last_timestamp: int = 0


@dataclass(slots=True)
class AccountOutcome:
    results: list[CreateAccountResult]
    created: list[AccountRow]
    last_timestamp: int


def _account_status(e: Account, existing: AccountRow | None, ts: int) -> CreateAccountStatus:
    A = CreateAccountStatus
    flags = int(e.flags)
    if e.timestamp != 0:
        return A.TIMESTAMP_MUST_BE_ZERO
    if flags & _ACCOUNT_RESERVED:
        return A.RESERVED_FLAG
    if e.id == 0:
        return A.ID_MUST_NOT_BE_ZERO
    if e.id == ID_MAX:
        return A.ID_MUST_NOT_BE_INT_MAX
    if existing is not None:
        # CLOSED is the one flag that changes after creation (closing transfers), so skip it.
        if (existing[A_FLAGS] & ~_CLOSED) != (flags & ~_CLOSED):
            return A.EXISTS_WITH_DIFFERENT_FLAGS
        if existing[5] != e.user_data_128:
            return A.EXISTS_WITH_DIFFERENT_USER_DATA_128
        if existing[6] != e.user_data_64:
            return A.EXISTS_WITH_DIFFERENT_USER_DATA_64
        if existing[7] != e.user_data_32:
            return A.EXISTS_WITH_DIFFERENT_USER_DATA_32
        if existing[A_LEDGER] != e.ledger:
            return A.EXISTS_WITH_DIFFERENT_LEDGER
        if existing[A_CODE] != e.code:
            return A.EXISTS_WITH_DIFFERENT_CODE
        return A.EXISTS
    if flags & _DMNEC and flags & _CMNED:
        return A.FLAGS_ARE_MUTUALLY_EXCLUSIVE
    if e.debits_pending != 0:
        return A.DEBITS_PENDING_MUST_BE_ZERO
    if e.debits_posted != 0:
        return A.DEBITS_POSTED_MUST_BE_ZERO
    if e.credits_pending != 0:
        return A.CREDITS_PENDING_MUST_BE_ZERO
    if e.credits_posted != 0:
        return A.CREDITS_POSTED_MUST_BE_ZERO
    if e.ledger == 0:
        return A.LEDGER_MUST_NOT_BE_ZERO
    if e.code == 0:
        return A.CODE_MUST_NOT_BE_ZERO
    return A.CREATED


def _check_account_ranges(e: Account) -> None:
    if not (
        0 <= e.id <= ID_MAX
        and 0 <= e.user_data_128 <= ID_MAX
        and 0 <= e.user_data_64 <= U64_MAX
        and 0 <= e.user_data_32 <= U32_MAX
        and 0 <= e.ledger <= U32_MAX
        and 0 <= e.code <= U16_MAX
        and 0 <= int(e.flags) <= U16_MAX
        and 0 <= e.timestamp <= U64_MAX
        and 0 <= e.debits_pending <= BALANCE_MAX
        and 0 <= e.debits_posted <= BALANCE_MAX
        and 0 <= e.credits_pending <= BALANCE_MAX
        and 0 <= e.credits_posted <= BALANCE_MAX
    ):
        raise LedgerValueError(f"account {e.id}: a field is outside its integer range")


def create_accounts(snap: AccountSnapshot, events: Sequence[Account], now_ns: int) -> AccountOutcome:
    """Apply a batch of account creations to a snapshot; pure."""
    n = len(events)
    if n > BATCH_MAX:
        raise BatchTooLargeError(f"a batch holds at most {BATCH_MAX} events, got {n}")
    for e in events:
        _check_account_ranges(e)
    A = CreateAccountStatus
    base = batch_timestamp(now_ns, snap.last_timestamp)
    statuses: list[CreateAccountStatus] = [A.CREATED] * n
    created: dict[int, AccountRow] = {}
    chain_start = -1
    i = 0
    while i < n:
        e = events[i]
        ts = base + i
        flags = int(e.flags)
        linked = bool(flags & _A_LINKED)
        if chain_start < 0 and linked:
            chain_start = i
        if linked and i == n - 1:
            status = A.LINKED_EVENT_CHAIN_OPEN
        else:
            existing = created.get(e.id)
            if existing is None:
                existing = snap.accounts.get(e.id)
            status = _account_status(e, existing, ts)
        if status is A.CREATED:
            created[e.id] = (
                e.id, 0, 0, 0, 0, e.user_data_128, e.user_data_64, e.user_data_32,
                e.ledger, e.code, flags, ts,
            )  # fmt: skip
            statuses[i] = status
            if not linked:
                chain_start = -1
            i += 1
            continue
        statuses[i] = status
        if chain_start < 0:
            i += 1
            continue
        # A chain member failed: roll back the chain and fail the rest of it.
        for j in range(chain_start, i):
            statuses[j] = A.LINKED_EVENT_FAILED
            created.pop(events[j].id, None)
        j = i
        while j < n and int(events[j].flags) & _A_LINKED:
            j += 1
            if j < n:
                linked_last = j == n - 1 and int(events[j].flags) & _A_LINKED
                statuses[j] = A.LINKED_EVENT_CHAIN_OPEN if linked_last else A.LINKED_EVENT_FAILED
        chain_start = -1
        i = j + 1
    results = [CreateAccountResult(base + k, s) for k, s in enumerate(statuses)]
    # An EXISTS result reports the existing account's timestamp (as TigerBeetle does).
    for k, s in enumerate(statuses):
        if s is A.EXISTS:
            row = snap.accounts.get(events[k].id) or created.get(events[k].id)
            if row is not None:
                results[k] = CreateAccountResult(row[A_TS], s)
    last = base + n - 1 if n else snap.last_timestamp
    return AccountOutcome(results, list(created.values()), last)


# --------------------------------------------------------------------------------------------
# Transfers


@dataclass(slots=True)
class TransferSnapshot:
    """What a transfer batch may read: only the rows it touches."""

    accounts: Mapping[int, AccountRow]  # debit/credit accounts of the events, pendings and expiring
    transfers: Mapping[int, TransferRow]  # existing transfers among the events' ids and pending_ids
    pending: Mapping[int, PendingRow]  # pending-state rows of pending transfers in `transfers`/`expiring`
    failed: Mapping[int, int]  # ids that already failed transiently -> status
    expiring: Sequence[TransferRow] = ()  # pending transfers due to expire at the batch timestamp
    last_timestamp: int = 0


@dataclass(slots=True)
class TransferOutcome:
    results: list[CreateTransferResult]
    created: list[TransferRow]  # in timestamp order: the new Merkle leaves
    accounts: Mapping[int, AccountRow]  # accounts whose balances or flags changed (new values)
    pending: dict[int, PendingRow]  # new or changed pending-state rows
    pending_new: set[int]  # ids among `pending` that are new rows (others are updates)
    failed: list[tuple[int, int, int]] = field(default_factory=list)  # (id, status, timestamp)
    last_timestamp: int = 0
    # Balances of HISTORY accounts right after each created transfer that debits or credits them,
    # in timestamp order (debit side first). Expiries record nothing, as in TigerBeetle: what they
    # release shows in the account's next record.
    balances: list[BalanceRow] = field(default_factory=list)
    # The slots of each created transfer's debit and credit accounts in the snapshot's accounts
    # (an AccountTable), when the path worked on columns; else None.
    sides: tuple[Column, Column] | None = None


def _check_transfer_ranges(t: Transfer) -> None:
    if not (
        0 <= t.id <= ID_MAX
        and 0 <= t.debit_account_id <= ID_MAX
        and 0 <= t.credit_account_id <= ID_MAX
        and 0 <= t.amount <= AMOUNT_MAX
        and 0 <= t.pending_id <= ID_MAX
        and 0 <= t.user_data_128 <= ID_MAX
        and 0 <= t.user_data_64 <= U64_MAX
        and 0 <= t.user_data_32 <= U32_MAX
        and 0 <= t.timeout <= U32_MAX
        and 0 <= t.ledger <= U32_MAX
        and 0 <= t.code <= U16_MAX
        and 0 <= int(t.flags) <= U16_MAX
        and 0 <= t.timestamp <= U64_MAX
    ):
        raise LedgerValueError(f"transfer {t.id}: a field is outside its integer range")


def _exists_status(e: Transfer, t: TransferRow, pending_amount: int | None) -> CreateTransferStatus:
    """Compare an event with the transfer already stored under its id."""
    flags = int(e.flags)
    if t[T_FLAGS] != flags:
        return S.EXISTS_WITH_DIFFERENT_FLAGS
    if t[T_PID] != e.pending_id:
        return S.EXISTS_WITH_DIFFERENT_PENDING_ID
    if t[T_TIMEOUT] != e.timeout:
        return S.EXISTS_WITH_DIFFERENT_TIMEOUT
    resolving = flags & (_POST | _VOID)
    if resolving:
        # Post/void events may leave these zero: the stored transfer holds the pending's values.
        if e.debit_account_id and t[T_DR] != e.debit_account_id:
            return S.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
        if e.credit_account_id and t[T_CR] != e.credit_account_id:
            return S.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    else:
        if t[T_DR] != e.debit_account_id:
            return S.EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID
        if t[T_CR] != e.credit_account_id:
            return S.EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID
    if flags & (_BAL_DR | _BAL_CR):
        if t[T_AMT] > e.amount:
            return S.EXISTS_WITH_DIFFERENT_AMOUNT
    elif flags & _POST:
        full = pending_amount is not None and t[T_AMT] == pending_amount
        if not (e.amount == t[T_AMT] or (full and e.amount >= t[T_AMT])):
            return S.EXISTS_WITH_DIFFERENT_AMOUNT
    elif flags & _VOID:
        if e.amount != 0 and e.amount != t[T_AMT]:
            return S.EXISTS_WITH_DIFFERENT_AMOUNT
    elif t[T_AMT] != e.amount:
        return S.EXISTS_WITH_DIFFERENT_AMOUNT
    if resolving:
        if e.user_data_128 and t[T_U128] != e.user_data_128:
            return S.EXISTS_WITH_DIFFERENT_USER_DATA_128
        if e.user_data_64 and t[T_U64] != e.user_data_64:
            return S.EXISTS_WITH_DIFFERENT_USER_DATA_64
        if e.user_data_32 and t[T_U32] != e.user_data_32:
            return S.EXISTS_WITH_DIFFERENT_USER_DATA_32
        if e.ledger and t[T_LEDGER] != e.ledger:
            return S.EXISTS_WITH_DIFFERENT_LEDGER
        if e.code and t[T_CODE] != e.code:
            return S.EXISTS_WITH_DIFFERENT_CODE
        return S.EXISTS
    if t[T_U128] != e.user_data_128:
        return S.EXISTS_WITH_DIFFERENT_USER_DATA_128
    if t[T_U64] != e.user_data_64:
        return S.EXISTS_WITH_DIFFERENT_USER_DATA_64
    if t[T_U32] != e.user_data_32:
        return S.EXISTS_WITH_DIFFERENT_USER_DATA_32
    if t[T_LEDGER] != e.ledger:
        return S.EXISTS_WITH_DIFFERENT_LEDGER
    if t[T_CODE] != e.code:
        return S.EXISTS_WITH_DIFFERENT_CODE
    return S.EXISTS


def _flags_exclusive(flags: int) -> bool:
    if flags & _PENDING and flags & (_POST | _VOID):
        return True
    if flags & _POST and flags & _VOID:
        return True
    return bool(flags & (_POST | _VOID) and flags & (_BAL_DR | _BAL_CR | _CLOSE_DR | _CLOSE_CR))


class _Batch:
    """Working state of one transfer batch (copy-on-write over the snapshot)."""

    __slots__ = (
        "accounts",
        "chain_saved_accounts",
        "chain_saved_pending",
        "created",
        "dirty",
        "failed",
        "failed_new",
        "in_chain",
        "pending",
        "pending_new",
        "snap",
        "transfers",
        "work",
    )

    def __init__(self, snap: TransferSnapshot) -> None:
        self.snap = snap
        self.accounts = snap.accounts
        self.transfers = snap.transfers
        self.work: dict[int, list[int]] = {}
        self.dirty: set[int] = set()  # accounts written by this batch
        self.created: dict[int, TransferRow] = {}
        self.pending: dict[int, PendingRow] = {}
        self.pending_new: set[int] = set()
        self.failed_new: list[tuple[int, int, int]] = []
        self.failed: dict[int, int] = {}
        self.in_chain = False
        self.chain_saved_accounts: dict[int, list[int] | None] = {}
        self.chain_saved_pending: dict[int, PendingRow | None] = {}

    def account(self, account_id: int) -> list[int] | None:
        a = self.work.get(account_id)
        if a is None:
            row = self.accounts.get(account_id)
            if row is None:
                return None
            a = self.work[account_id] = list(row)
        if self.in_chain and account_id not in self.chain_saved_accounts:
            self.chain_saved_accounts[account_id] = a[:]
        self.dirty.add(account_id)
        return a

    def transfer(self, transfer_id: int) -> TransferRow | None:
        t = self.created.get(transfer_id)
        if t is None:
            t = self.transfers.get(transfer_id)
        return t

    def pending_row(self, transfer_id: int) -> PendingRow | None:
        p = self.pending.get(transfer_id)
        if p is None:
            p = self.snap.pending.get(transfer_id)
        return p

    def set_pending(self, row: PendingRow, new: bool) -> None:
        tid = row[0]
        if self.in_chain and tid not in self.chain_saved_pending:
            self.chain_saved_pending[tid] = self.pending.get(tid)
        self.pending[tid] = row
        if new:
            self.pending_new.add(tid)

    def begin_chain(self) -> None:
        self.in_chain = True
        self.chain_saved_accounts = {}
        self.chain_saved_pending = {}

    def end_chain(self) -> None:
        self.in_chain = False
        self.chain_saved_accounts = {}
        self.chain_saved_pending = {}

    def rollback_chain(self, created_ids: Sequence[int]) -> None:
        for aid, saved in self.chain_saved_accounts.items():
            if saved is None:
                self.work.pop(aid, None)
            else:
                self.work[aid] = saved
        for tid, prow in self.chain_saved_pending.items():
            if prow is None:
                self.pending.pop(tid, None)
                self.pending_new.discard(tid)
            else:
                self.pending[tid] = prow
        for tid in created_ids:
            self.created.pop(tid, None)
        self.end_chain()

    def release(self, p: TransferRow, state: int, at_ns: int, prow: PendingRow) -> None:
        """Resolve a pending transfer by voiding or expiring it: release its pending amounts."""
        dr = self.account(p[T_DR])
        cr = self.account(p[T_CR])
        if dr is None or cr is None:
            raise LedgerInvariantError(f"pending transfer {p[0]} references a missing account")
        amount = p[T_AMT]
        dr[A_DP] -= amount
        cr[A_CP] -= amount
        if p[T_FLAGS] & _CLOSE_DR:
            dr[A_FLAGS] &= ~_CLOSED
        if p[T_FLAGS] & _CLOSE_CR:
            cr[A_FLAGS] &= ~_CLOSED
        self.set_pending((p[0], state, prow[2], at_ns), new=False)

    def apply(self, e: Transfer, ts: int) -> CreateTransferStatus:
        """Validate one event and apply it; the status follows TigerBeetle's precedence."""
        flags = int(e.flags)
        if e.timestamp != 0:
            return S.TIMESTAMP_MUST_BE_ZERO
        if flags & _TRANSFER_RESERVED:
            return S.RESERVED_FLAG
        tid = e.id
        if tid == 0:
            return S.ID_MUST_NOT_BE_ZERO
        if tid == ID_MAX:
            return S.ID_MUST_NOT_BE_INT_MAX
        existing = self.created.get(tid) or self.transfers.get(tid)
        if existing is not None:
            pamt = None
            if existing[T_FLAGS] & _POST:
                p = self.transfer(existing[T_PID])
                pamt = p[T_AMT] if p is not None else None
            return _exists_status(e, existing, pamt)
        if tid in self.failed or tid in self.snap.failed:
            return S.ID_ALREADY_FAILED
        if flags & (
            _PENDING | _POST | _VOID | _BAL_DR | _BAL_CR | _CLOSE_DR | _CLOSE_CR
        ) and _flags_exclusive(flags):
            return S.FLAGS_ARE_MUTUALLY_EXCLUSIVE
        if flags & (_POST | _VOID):
            return self.resolve(e, flags, ts)
        dr_id = e.debit_account_id
        cr_id = e.credit_account_id
        if dr_id == 0:
            return S.DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if dr_id == ID_MAX:
            return S.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
        if cr_id == 0:
            return S.CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO
        if cr_id == ID_MAX:
            return S.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
        if dr_id == cr_id:
            return S.ACCOUNTS_MUST_BE_DIFFERENT
        if e.pending_id != 0:
            return S.PENDING_ID_MUST_BE_ZERO
        pending = flags & _PENDING
        if e.timeout and not pending:
            return S.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        if flags & (_CLOSE_DR | _CLOSE_CR) and not pending:
            return S.CLOSING_TRANSFER_MUST_BE_PENDING
        ledger = e.ledger
        if ledger == 0:
            return S.LEDGER_MUST_NOT_BE_ZERO
        if e.code == 0:
            return S.CODE_MUST_NOT_BE_ZERO
        dr = self.work.get(dr_id)
        if dr is None:
            row = self.accounts.get(dr_id)
            if row is None:
                return S.DEBIT_ACCOUNT_NOT_FOUND
            dr = self.work[dr_id] = list(row)
        cr = self.work.get(cr_id)
        if cr is None:
            row = self.accounts.get(cr_id)
            if row is None:
                return S.CREDIT_ACCOUNT_NOT_FOUND
            cr = self.work[cr_id] = list(row)
        if dr[A_LEDGER] != cr[A_LEDGER]:
            return S.ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER
        if ledger != dr[A_LEDGER]:
            return S.TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS
        if dr[A_FLAGS] & _CLOSED:
            return S.DEBIT_ACCOUNT_ALREADY_CLOSED
        if cr[A_FLAGS] & _CLOSED:
            return S.CREDIT_ACCOUNT_ALREADY_CLOSED
        amount = e.amount
        if flags & _BAL_DR:
            room = dr[A_CPO] - dr[A_DP] - dr[A_DPO]
            amount = min(amount, room if room > 0 else 0)
        if flags & _BAL_CR:
            room = cr[A_DPO] - cr[A_CP] - cr[A_CPO]
            amount = min(amount, room if room > 0 else 0)
        if pending:
            if dr[A_DP] + amount > BALANCE_MAX:
                return S.OVERFLOWS_DEBITS_PENDING
            if cr[A_CP] + amount > BALANCE_MAX:
                return S.OVERFLOWS_CREDITS_PENDING
        else:
            if dr[A_DPO] + amount > BALANCE_MAX:
                return S.OVERFLOWS_DEBITS_POSTED
            if cr[A_CPO] + amount > BALANCE_MAX:
                return S.OVERFLOWS_CREDITS_POSTED
        if dr[A_DP] + dr[A_DPO] + amount > BALANCE_MAX:
            return S.OVERFLOWS_DEBITS
        if cr[A_CP] + cr[A_CPO] + amount > BALANCE_MAX:
            return S.OVERFLOWS_CREDITS
        expires_at = 0
        if e.timeout:
            expires_at = ts + e.timeout * _NS
            if expires_at > BALANCE_MAX:
                return S.OVERFLOWS_TIMEOUT
        if dr[A_FLAGS] & _DMNEC and dr[A_DP] + dr[A_DPO] + amount > dr[A_CPO]:
            return S.EXCEEDS_CREDITS
        if cr[A_FLAGS] & _CMNED and cr[A_CP] + cr[A_CPO] + amount > cr[A_DPO]:
            return S.EXCEEDS_DEBITS
        # Apply.
        if self.in_chain:
            saved = self.chain_saved_accounts
            if dr_id not in saved:
                saved[dr_id] = dr[:]
            if cr_id not in saved:
                saved[cr_id] = cr[:]
        dirty = self.dirty
        dirty.add(dr_id)
        dirty.add(cr_id)
        if pending:
            dr[A_DP] += amount
            cr[A_CP] += amount
            if flags & _CLOSE_DR:
                dr[A_FLAGS] |= _CLOSED
            if flags & _CLOSE_CR:
                cr[A_FLAGS] |= _CLOSED
            self.set_pending((tid, _ST_PENDING, expires_at, 0), new=True)
        else:
            dr[A_DPO] += amount
            cr[A_CPO] += amount
        row = (
            tid, dr_id, cr_id, amount, 0, e.user_data_128, e.user_data_64, e.user_data_32,
            e.timeout, ledger, e.code, flags, ts,
        )  # fmt: skip
        self.created[tid] = row
        return _CREATED

    def resolve(self, e: Transfer, flags: int, ts: int) -> CreateTransferStatus:
        """Post or void a pending transfer."""
        if e.debit_account_id == ID_MAX:
            return S.DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
        if e.credit_account_id == ID_MAX:
            return S.CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX
        pid = e.pending_id
        if pid == 0:
            return S.PENDING_ID_MUST_NOT_BE_ZERO
        if pid == ID_MAX:
            return S.PENDING_ID_MUST_NOT_BE_INT_MAX
        if pid == e.id:
            return S.PENDING_ID_MUST_BE_DIFFERENT
        if e.timeout:
            return S.TIMEOUT_RESERVED_FOR_PENDING_TRANSFER
        p = self.transfer(pid)
        if p is None:
            return S.PENDING_TRANSFER_NOT_FOUND
        if not p[T_FLAGS] & _PENDING:
            return S.PENDING_TRANSFER_NOT_PENDING
        if e.debit_account_id and e.debit_account_id != p[T_DR]:
            return S.PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID
        if e.credit_account_id and e.credit_account_id != p[T_CR]:
            return S.PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID
        if e.ledger and e.ledger != p[T_LEDGER]:
            return S.PENDING_TRANSFER_HAS_DIFFERENT_LEDGER
        if e.code and e.code != p[T_CODE]:
            return S.PENDING_TRANSFER_HAS_DIFFERENT_CODE
        post = flags & _POST
        pamt = p[T_AMT]
        if post:
            amount = pamt if e.amount == AMOUNT_MAX else e.amount
            if amount > pamt:
                return S.EXCEEDS_PENDING_TRANSFER_AMOUNT
        else:
            if e.amount != 0 and e.amount != pamt:
                return S.PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT
            amount = pamt
        prow = self.pending_row(pid)
        if prow is None:
            raise LedgerInvariantError(f"pending transfer {pid} has no pending-state row")
        state = prow[1]
        if state == _ST_POSTED:
            return S.PENDING_TRANSFER_ALREADY_POSTED
        if state == _ST_VOIDED:
            return S.PENDING_TRANSFER_ALREADY_VOIDED
        if state == _ST_EXPIRED or (prow[2] and prow[2] <= ts):
            return S.PENDING_TRANSFER_EXPIRED
        dr = self.account(p[T_DR])
        cr = self.account(p[T_CR])
        if dr is None or cr is None:
            raise LedgerInvariantError(f"pending transfer {pid} references a missing account")
        if post:
            if dr[A_FLAGS] & _CLOSED and not p[T_FLAGS] & _CLOSE_DR:
                return S.DEBIT_ACCOUNT_ALREADY_CLOSED
            if cr[A_FLAGS] & _CLOSED and not p[T_FLAGS] & _CLOSE_CR:
                return S.CREDIT_ACCOUNT_ALREADY_CLOSED
            if dr[A_DPO] + amount > BALANCE_MAX:
                return S.OVERFLOWS_DEBITS_POSTED
            if cr[A_CPO] + amount > BALANCE_MAX:
                return S.OVERFLOWS_CREDITS_POSTED
            dr[A_DP] -= pamt
            cr[A_CP] -= pamt
            dr[A_DPO] += amount
            cr[A_CPO] += amount
            self.set_pending((pid, _ST_POSTED, prow[2], ts), new=False)
        else:
            self.release(p, _ST_VOIDED, ts, prow)
        row = (
            e.id, p[T_DR], p[T_CR], amount, pid,
            e.user_data_128 or p[T_U128], e.user_data_64 or p[T_U64], e.user_data_32 or p[T_U32],
            0, p[T_LEDGER], p[T_CODE], flags, ts,
        )  # fmt: skip
        self.created[e.id] = row
        return _CREATED


# --------------------------------------------------------------------------------------------
# Plain batches: the whole batch at once

_id_of = attrgetter("id")
_dr_of = attrgetter("debit_account_id")
_cr_of = attrgetter("credit_account_id")
_amount_of = attrgetter("amount")
_pid_of = attrgetter("pending_id")
_u128_of = attrgetter("user_data_128")
_u64_of = attrgetter("user_data_64")
_u32_of = attrgetter("user_data_32")
_timeout_of = attrgetter("timeout")
_ledger_of = attrgetter("ledger")
_code_of = attrgetter("code")
_flags_of = attrgetter("flags")
_ts_of = attrgetter("timestamp")
_LIMITS = _DMNEC | _CMNED
_DP_OF, _DPO_OF, _CP_OF, _CPO_OF = itemgetter(A_DP), itemgetter(A_DPO), itemgetter(A_CP), itemgetter(A_CPO)
_BALANCES_OF = (_DP_OF, _DPO_OF, _CP_OF, _CPO_OF)
_FLAGS_OF, _LEDGER_OF = itemgetter(A_FLAGS), itemgetter(A_LEDGER)


def _plain_transfers(snap: TransferSnapshot, events: Sequence[Transfer], base: int) -> TransferOutcome | None:
    """Apply a batch whose every event is a plain transfer certain to succeed; None when not certain.

    Plain: no flags, pending id, timeout or timestamp; fresh ids, unique in the batch; open existing
    accounts of the transfer's ledger; amounts within the balance range. Balances then only grow,
    so the final sums decide every overflow, and a balance limit cannot fail when it holds with all
    of the account's debits (credits) applied before any of its credits (debits). On None the
    caller runs the exact event-by-event path, which gives these same results whenever this applies.
    The accounts are worked on as columns (ledger/columns.py); the changes come back as columns too.
    """
    n = len(events)
    if any(map(_flags_of, events)) or any(map(_pid_of, events)) or any(map(_timeout_of, events)):
        return None
    if any(map(_ts_of, events)):
        return None
    ids = list(map(_id_of, events))
    drs = list(map(_dr_of, events))
    crs = list(map(_cr_of, events))
    amounts = list(map(_amount_of, events))
    ledgers = list(map(_ledger_of, events))
    codes = list(map(_code_of, events))
    u128s = list(map(_u128_of, events))
    u64s = list(map(_u64_of, events))
    u32s = list(map(_u32_of, events))
    if not (
        min(ids) > 0 and max(ids) < ID_MAX
        and min(drs) > 0 and max(drs) < ID_MAX
        and min(crs) > 0 and max(crs) < ID_MAX
        and min(amounts) >= 0 and max(amounts) <= BALANCE_MAX
        and min(ledgers) > 0 and max(ledgers) <= U32_MAX
        and min(codes) > 0 and max(codes) <= U16_MAX
        and min(u128s) >= 0 and max(u128s) <= ID_MAX
        and min(u64s) >= 0 and max(u64s) <= U64_MAX
        and min(u32s) >= 0 and max(u32s) <= U32_MAX
    ):  # fmt: skip
        return None
    # The sums below are int64: every one is bounded by n times the largest amount.
    if max(amounts) * n > BALANCE_MAX or len(set(ids)) != n or any(map(eq, drs, crs)):
        return None
    if snap.transfers and not snap.transfers.keys().isdisjoint(ids):
        return None
    if snap.failed and not snap.failed.keys().isdisjoint(ids):
        return None
    table = snap.accounts
    if not isinstance(table, AccountTable):
        rows = list(map(table.get, {*drs, *crs}))
        table = AccountTable.of(r for r in rows if r is not None)
    get = table.slots.get
    dr_slots, cr_slots = list(map(get, drs)), list(map(get, crs))
    if None in dr_slots or None in cr_slots:
        return None
    d = np.array(dr_slots, np.int64)
    c = np.array(cr_slots, np.int64)
    cols = table.cols
    led = np.array(ledgers, np.int64)
    if not (np.array_equal(cols[C_LEDGER, d], led) and np.array_equal(cols[C_LEDGER, c], led)):
        return None
    touched = np.zeros(cols.shape[1], np.bool_)  # a flag per slot: cheaper than sorting the slots
    touched[d] = True
    touched[c] = True
    slots = np.flatnonzero(touched)
    position = positions(slots, cols.shape[1])
    at = position[d], position[c]
    old = cols[:C_HEAD, slots]
    new = old[:C_LEDGER].copy()
    amount = np.array(amounts, np.int64)
    debits = np.zeros(len(slots), np.int64)
    credits = np.zeros(len(slots), np.int64)
    np.add.at(debits, at[0], amount)
    np.add.at(credits, at[1], amount)
    flags = old[C_FLAGS]
    if np.any(flags & (_CLOSED | _HISTORY)):  # HISTORY: the exact path records balances per transfer
        return None
    # Balances only grow: the largest pending plus the largest posted bounds every sum.
    if np.any(debits > BALANCE_MAX - old[C_DPO]) or np.any(credits > BALANCE_MAX - old[C_CPO]):
        return None
    new[C_DPO] += debits
    new[C_CPO] += credits
    if int(new[C_DP].max()) + int(new[C_DPO].max()) > BALANCE_MAX:
        return None
    if int(new[C_CP].max()) + int(new[C_CPO].max()) > BALANCE_MAX:
        return None
    if np.any(flags & _LIMITS):
        if np.any((flags & _DMNEC != 0) & (new[C_DP] + new[C_DPO] > old[C_CPO])):
            return None
        if np.any((flags & _CMNED != 0) & (new[C_CP] + new[C_CPO] > old[C_DPO])):
            return None
    changes = AccountChanges(table, slots, new)
    _check_changes(table, changes)
    stamps = list(range(base, base + n))  # one int object per timestamp, shared by rows and results
    zeros = [0] * n  # pending_id, timeout and flags of every created row
    columns = (ids, drs, crs, amounts, zeros, u128s, u64s, u32s, zeros, ledgers, codes, zeros, stamps)
    created: list[TransferRow] = list(zip(*columns, strict=True))
    results: list[CreateTransferResult] = list(
        map(tuple.__new__, repeat(CreateTransferResult, n), zip(stamps, repeat(_CREATED, n), strict=True))
    )
    return TransferOutcome(
        results=results,
        created=created,
        accounts=changes,
        pending={},
        pending_new=set(),
        failed=[],
        last_timestamp=base + n - 1,
        sides=(d, c),
    )


def create_transfers(snap: TransferSnapshot, events: Sequence[Transfer], now_ns: int) -> TransferOutcome:
    """Apply a batch of transfers to a snapshot; pure. Raises before changing anything on bad input."""
    n = len(events)
    if n > BATCH_MAX:
        raise BatchTooLargeError(f"a batch holds at most {BATCH_MAX} events, got {n}")
    base = batch_timestamp(now_ns, snap.last_timestamp)
    if n and not snap.expiring:
        plain = _plain_transfers(snap, events, base)
        if plain is not None:
            return plain
    return _transfers_in_order(snap, events, base)


def _transfers_in_order(snap: TransferSnapshot, events: Sequence[Transfer], base: int) -> TransferOutcome:
    """The exact path: expire due pending transfers, then apply the events one after the other."""
    n = len(events)
    for e in events:
        _check_transfer_ranges(e)
    b = _Batch(snap)
    # Expire due pending transfers first (deterministic: driven by the batch timestamp).
    for p in snap.expiring:
        prow = b.pending_row(p[0])
        if prow is None or prow[1] != _ST_PENDING or not prow[2] or prow[2] > base:
            raise LedgerInvariantError(f"transfer {p[0]} is not a pending transfer due to expire")
        b.release(p, _ST_EXPIRED, prow[2], prow)
    statuses: list[CreateTransferStatus] = [_CREATED] * n
    chain_start = -1
    chain_created: list[int] = []
    chain_balances = 0  # len(balances) when the open chain began: a rollback truncates to it
    apply = b.apply
    # Balance records only when the batch may touch a HISTORY account (flags never gain HISTORY).
    history = any(r[A_FLAGS] & _HISTORY for r in snap.accounts.values())
    balances: list[BalanceRow] = []
    i = 0
    while i < n:
        e = events[i]
        linked = int(e.flags) & _LINKED
        if linked and chain_start < 0:
            chain_start = i
            chain_created = []
            chain_balances = len(balances)
            b.begin_chain()
        if linked and i == n - 1:
            status: CreateTransferStatus = S.LINKED_EVENT_CHAIN_OPEN
        else:
            status = apply(e, base + i)
        if status is _CREATED:
            if history:
                _record_balances(b, e.id, balances)
            if chain_start >= 0:
                chain_created.append(e.id)
                if not linked:
                    chain_start = -1
                    b.end_chain()
            i += 1
            continue
        statuses[i] = status
        if chain_start >= 0:
            b.rollback_chain(chain_created)
            del balances[chain_balances:]
            for j in range(chain_start, i):
                statuses[j] = S.LINKED_EVENT_FAILED
            chain_start = -1
        if status in TRANSIENT_TRANSFER_STATUSES:
            b.failed[e.id] = int(status)
            b.failed_new.append((e.id, int(status), base + i))
        if linked:
            j = i + 1
            while j < n:
                more = int(events[j].flags) & _LINKED
                statuses[j] = S.LINKED_EVENT_CHAIN_OPEN if more and j == n - 1 else S.LINKED_EVENT_FAILED
                if not more:
                    break
                j += 1
            i = j + 1
        else:
            i += 1
    new = tuple.__new__
    R = CreateTransferResult
    results: list[CreateTransferResult] = [new(R, (base + k, s)) for k, s in enumerate(statuses)]
    for k, s in enumerate(statuses):
        if s is S.EXISTS:
            t = b.transfer(events[k].id)
            if t is not None:
                results[k] = CreateTransferResult(t[T_TS], s)
    work = b.work
    changed = {aid: tuple(work[aid]) for aid in b.dirty if aid in work}
    check_account_invariants(snap.accounts, changed)
    last = base + n - 1 if n else snap.last_timestamp
    return TransferOutcome(
        results=results,
        created=list(b.created.values()),
        accounts=changed,
        pending=b.pending,
        pending_new=b.pending_new,
        failed=b.failed_new,
        last_timestamp=last,
        balances=balances,
    )


def _record_balances(b: _Batch, transfer_id: int, out: list[BalanceRow]) -> None:
    """Append the balances of the HISTORY accounts of a transfer just created, as they are now."""
    t = b.created[transfer_id]
    ts = t[T_TS]
    for side, aid in ((0, t[T_DR]), (1, t[T_CR])):
        a = b.work.get(aid)
        if a is None:
            raise LedgerInvariantError(f"transfer {transfer_id} created without loading account {aid}")
        if a[A_FLAGS] & _HISTORY:
            out.append((aid, ts, side, a[A_DP], a[A_DPO], a[A_CP], a[A_CPO]))


def check_account_invariants(before: Mapping[int, AccountRow], after: Mapping[int, AccountRow]) -> None:
    """Raise LedgerInvariantError unless the changed accounts keep every money invariant.

    Per ledger the pending debits moved equal the pending credits moved, and likewise for posted;
    every balance stays within [0, BALANCE_MAX]; balance-limit flags hold.
    """
    if not _invariants_hold(before, after):
        _check_account_invariants(before, after)


def _invariants_hold(before: Mapping[int, AccountRow], after: Mapping[int, AccountRow]) -> bool:
    """Whole-column form of the invariant check for the common case (one ledger, no new accounts).
    False means "not shown here": the per-account check then decides (and names the account)."""
    rows = list(after.values())
    if not rows:
        return True
    olds = list(map(before.get, after))
    if None in olds:
        return False
    columns = [list(map(g, rows)) for g in _BALANCES_OF]
    if min(map(min, columns)) < 0 or max(map(max, columns)) > BALANCE_MAX:
        return False
    if any(f & _LIMITS for f in set(map(_FLAGS_OF, rows))):
        for a in rows:
            flags = a[A_FLAGS]
            if (flags & _DMNEC and a[1] + a[2] > a[4]) or (flags & _CMNED and a[3] + a[4] > a[2]):
                return False
    if len(set(map(_LEDGER_OF, rows))) != 1:
        return False
    old_rows = cast("list[AccountRow]", olds)
    moved: list[int] = [
        sum(new) - sum(map(g, old_rows)) for new, g in zip(columns, _BALANCES_OF, strict=True)
    ]
    return moved[0] == moved[2] and moved[1] == moved[3]


def _check_changes(table: AccountTable, changes: AccountChanges) -> None:
    """`check_account_invariants` for changes held as columns: whole columns when they show that
    the invariants hold, else the per-account check on rows, which names the account."""
    new = changes.cols
    old = table.cols[:, changes.slots]
    ledgers = old[C_LEDGER]
    flags = new[C_FLAGS]
    if (
        len(changes)
        and int(new[:C_FLAGS].min()) >= 0
        and not np.any((flags & _DMNEC != 0) & (new[C_DP] > new[C_CPO] - new[C_DPO]))
        and not np.any((flags & _CMNED != 0) & (new[C_CP] > new[C_DPO] - new[C_CPO]))
        and int(ledgers.min()) == int(ledgers.max())
    ):
        dp, dpo, cp, cpo = (sum((new[k] - old[k]).tolist()) for k in (C_DP, C_DPO, C_CP, C_CPO))
        if dp == cp and dpo == cpo:
            return
    before = {aid: table[aid] for aid in changes}
    _check_account_invariants(before, dict(changes.items()))


def _check_account_invariants(before: Mapping[int, AccountRow], after: Mapping[int, AccountRow]) -> None:
    deltas: dict[int, list[int]] = {}
    for aid, a in after.items():
        dp, dpo, cp, cpo = a[1], a[2], a[3], a[4]
        if not (0 <= dp <= BALANCE_MAX and 0 <= dpo <= BALANCE_MAX and 0 <= cp <= BALANCE_MAX):
            raise LedgerInvariantError(f"account {aid}: balance out of range")
        if not 0 <= cpo <= BALANCE_MAX:
            raise LedgerInvariantError(f"account {aid}: balance out of range")
        flags = a[A_FLAGS]
        if flags & _DMNEC and dp + dpo > cpo:
            raise LedgerInvariantError(f"account {aid}: debits exceed credits")
        if flags & _CMNED and cp + cpo > dpo:
            raise LedgerInvariantError(f"account {aid}: credits exceed debits")
        old = before.get(aid)
        d = deltas.get(a[A_LEDGER])
        if d is None:
            d = deltas[a[A_LEDGER]] = [0, 0, 0, 0]
        if old is None:
            d[0] += dp
            d[1] += dpo
            d[2] += cp
            d[3] += cpo
        else:
            d[0] += dp - old[1]
            d[1] += dpo - old[2]
            d[2] += cp - old[3]
            d[3] += cpo - old[4]
    for ledger, (ddp, ddpo, dcp, dcpo) in deltas.items():
        if ddp != dcp or ddpo != dcpo:
            raise LedgerInvariantError(f"ledger {ledger}: debits and credits moved by different amounts")
