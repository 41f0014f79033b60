"""Ledger data types, modelled on TigerBeetle's `Account`, `Transfer`, flags and result statuses.

Field names follow TigerBeetle. Every field defaults to 0. Amounts are integer micro-units and are
bounded by the storage's signed 64-bit range: balances and amounts must stay `<= BALANCE_MAX`
(`2^63 - 1`); a transfer that would push a balance beyond it fails with an `OVERFLOWS_*` status.
The request field `amount` itself may be as large as `AMOUNT_MAX` (`2^128 - 1`) because TigerBeetle
uses that value to mean "as much as possible" for balancing and post-pending transfers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "AMOUNT_MAX",
    "BALANCE_MAX",
    "BATCH_MAX",
    "ID_MAX",
    "TRANSIENT_TRANSFER_STATUSES",
    "Account",
    "AccountBalance",
    "AccountFlags",
    "BatchTooLargeError",
    "CreateAccountResult",
    "CreateAccountStatus",
    "CreateTransferResult",
    "CreateTransferStatus",
    "LedgerError",
    "LedgerInvariantError",
    "LedgerRefusal",
    "LedgerValueError",
    "PendingState",
    "Transfer",
    "TransferFlags",
]

BATCH_MAX = 8190  # events per create_accounts / create_transfers call (TigerBeetle's batch size)
ID_MAX = (1 << 128) - 1  # reserved, like zero
AMOUNT_MAX = (1 << 128) - 1  # "as much as possible" for balancing / post-pending amounts
BALANCE_MAX = (1 << 63) - 1  # every stored amount and balance is a signed 64-bit integer
U64_MAX = (1 << 64) - 1
U32_MAX = (1 << 32) - 1
U16_MAX = (1 << 16) - 1


class LedgerError(Exception):
    """Base class of every error the ledger raises."""


class LedgerRefusal(LedgerError):
    """A request refused for a stable reason: `reason` is a slug (the HTTP layer's problem type)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class LedgerValueError(LedgerError, ValueError):
    """A request is malformed (a field outside its integer range); nothing was applied."""


class BatchTooLargeError(LedgerValueError):
    """A batch holds more than `BATCH_MAX` events; nothing was applied."""


class LedgerInvariantError(LedgerError):
    """A money invariant failed (debits != credits, a balance limit broken, a transfer rewritten)."""


class AccountFlags(enum.IntFlag):
    NONE = 0
    LINKED = 1 << 0
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1 << 1
    CREDITS_MUST_NOT_EXCEED_DEBITS = 1 << 2
    HISTORY = 1 << 3
    IMPORTED = 1 << 4
    CLOSED = 1 << 5


class TransferFlags(enum.IntFlag):
    NONE = 0
    LINKED = 1 << 0
    PENDING = 1 << 1
    POST_PENDING_TRANSFER = 1 << 2
    VOID_PENDING_TRANSFER = 1 << 3
    BALANCING_DEBIT = 1 << 4
    BALANCING_CREDIT = 1 << 5
    CLOSING_DEBIT = 1 << 6
    CLOSING_CREDIT = 1 << 7
    IMPORTED = 1 << 8


# Flags this ledger implements; any other bit (including IMPORTED) gives RESERVED_FLAG.
ACCOUNT_FLAGS_SUPPORTED = int(
    AccountFlags.LINKED
    | AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS
    | AccountFlags.CREDITS_MUST_NOT_EXCEED_DEBITS
    | AccountFlags.HISTORY
    | AccountFlags.CLOSED
)
TRANSFER_FLAGS_SUPPORTED = int(
    TransferFlags.LINKED
    | TransferFlags.PENDING
    | TransferFlags.POST_PENDING_TRANSFER
    | TransferFlags.VOID_PENDING_TRANSFER
    | TransferFlags.BALANCING_DEBIT
    | TransferFlags.BALANCING_CREDIT
    | TransferFlags.CLOSING_DEBIT
    | TransferFlags.CLOSING_CREDIT
)


class CreateAccountStatus(enum.IntEnum):
    """Outcome of one `create_accounts` event, in TigerBeetle's order of precedence.

    The integer values are this ledger's own (precedence order), not TigerBeetle's wire values.
    """

    CREATED = 0
    LINKED_EVENT_FAILED = 1
    LINKED_EVENT_CHAIN_OPEN = 2
    TIMESTAMP_MUST_BE_ZERO = 3
    RESERVED_FLAG = 4
    ID_MUST_NOT_BE_ZERO = 5
    ID_MUST_NOT_BE_INT_MAX = 6
    EXISTS_WITH_DIFFERENT_FLAGS = 7
    EXISTS_WITH_DIFFERENT_USER_DATA_128 = 8
    EXISTS_WITH_DIFFERENT_USER_DATA_64 = 9
    EXISTS_WITH_DIFFERENT_USER_DATA_32 = 10
    EXISTS_WITH_DIFFERENT_LEDGER = 11
    EXISTS_WITH_DIFFERENT_CODE = 12
    EXISTS = 13
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = 14
    DEBITS_PENDING_MUST_BE_ZERO = 15
    DEBITS_POSTED_MUST_BE_ZERO = 16
    CREDITS_PENDING_MUST_BE_ZERO = 17
    CREDITS_POSTED_MUST_BE_ZERO = 18
    LEDGER_MUST_NOT_BE_ZERO = 19
    CODE_MUST_NOT_BE_ZERO = 20


class CreateTransferStatus(enum.IntEnum):
    """Outcome of one `create_transfers` event, in TigerBeetle's order of precedence.

    The integer values are this ledger's own (precedence order), not TigerBeetle's wire values.
    """

    CREATED = 0
    LINKED_EVENT_FAILED = 1
    LINKED_EVENT_CHAIN_OPEN = 2
    TIMESTAMP_MUST_BE_ZERO = 3
    RESERVED_FLAG = 4
    ID_MUST_NOT_BE_ZERO = 5
    ID_MUST_NOT_BE_INT_MAX = 6
    EXISTS_WITH_DIFFERENT_FLAGS = 7
    EXISTS_WITH_DIFFERENT_PENDING_ID = 8
    EXISTS_WITH_DIFFERENT_TIMEOUT = 9
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = 10
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = 11
    EXISTS_WITH_DIFFERENT_AMOUNT = 12
    EXISTS_WITH_DIFFERENT_USER_DATA_128 = 13
    EXISTS_WITH_DIFFERENT_USER_DATA_64 = 14
    EXISTS_WITH_DIFFERENT_USER_DATA_32 = 15
    EXISTS_WITH_DIFFERENT_LEDGER = 16
    EXISTS_WITH_DIFFERENT_CODE = 17
    EXISTS = 18
    ID_ALREADY_FAILED = 19
    FLAGS_ARE_MUTUALLY_EXCLUSIVE = 20
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 21
    DEBIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 22
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_ZERO = 23
    CREDIT_ACCOUNT_ID_MUST_NOT_BE_INT_MAX = 24
    ACCOUNTS_MUST_BE_DIFFERENT = 25
    PENDING_ID_MUST_BE_ZERO = 26
    PENDING_ID_MUST_NOT_BE_ZERO = 27
    PENDING_ID_MUST_NOT_BE_INT_MAX = 28
    PENDING_ID_MUST_BE_DIFFERENT = 29
    TIMEOUT_RESERVED_FOR_PENDING_TRANSFER = 30
    CLOSING_TRANSFER_MUST_BE_PENDING = 31
    LEDGER_MUST_NOT_BE_ZERO = 32
    CODE_MUST_NOT_BE_ZERO = 33
    DEBIT_ACCOUNT_NOT_FOUND = 34
    CREDIT_ACCOUNT_NOT_FOUND = 35
    ACCOUNTS_MUST_HAVE_THE_SAME_LEDGER = 36
    TRANSFER_MUST_HAVE_THE_SAME_LEDGER_AS_ACCOUNTS = 37
    PENDING_TRANSFER_NOT_FOUND = 38
    PENDING_TRANSFER_NOT_PENDING = 39
    PENDING_TRANSFER_HAS_DIFFERENT_DEBIT_ACCOUNT_ID = 40
    PENDING_TRANSFER_HAS_DIFFERENT_CREDIT_ACCOUNT_ID = 41
    PENDING_TRANSFER_HAS_DIFFERENT_LEDGER = 42
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = 43
    EXCEEDS_PENDING_TRANSFER_AMOUNT = 44
    PENDING_TRANSFER_HAS_DIFFERENT_AMOUNT = 45
    PENDING_TRANSFER_ALREADY_POSTED = 46
    PENDING_TRANSFER_ALREADY_VOIDED = 47
    PENDING_TRANSFER_EXPIRED = 48
    DEBIT_ACCOUNT_ALREADY_CLOSED = 49
    CREDIT_ACCOUNT_ALREADY_CLOSED = 50
    OVERFLOWS_DEBITS_PENDING = 51
    OVERFLOWS_CREDITS_PENDING = 52
    OVERFLOWS_DEBITS_POSTED = 53
    OVERFLOWS_CREDITS_POSTED = 54
    OVERFLOWS_DEBITS = 55
    OVERFLOWS_CREDITS = 56
    OVERFLOWS_TIMEOUT = 57
    EXCEEDS_CREDITS = 58
    EXCEEDS_DEBITS = 59


# TigerBeetle's transient errors: they depend on the state at the time, so the id is burnt and a
# retry with the same id gives ID_ALREADY_FAILED (the outcome of an id never changes).
TRANSIENT_TRANSFER_STATUSES = frozenset(
    {
        CreateTransferStatus.DEBIT_ACCOUNT_NOT_FOUND,
        CreateTransferStatus.CREDIT_ACCOUNT_NOT_FOUND,
        CreateTransferStatus.PENDING_TRANSFER_NOT_FOUND,
        CreateTransferStatus.EXCEEDS_CREDITS,
        CreateTransferStatus.EXCEEDS_DEBITS,
        CreateTransferStatus.DEBIT_ACCOUNT_ALREADY_CLOSED,
        CreateTransferStatus.CREDIT_ACCOUNT_ALREADY_CLOSED,
    }
)


class PendingState(enum.IntEnum):
    """Lifecycle of a pending (two-phase) transfer; it resolves at most once."""

    PENDING = 1
    POSTED = 2
    VOIDED = 3
    EXPIRED = 4


class CreateAccountResult(NamedTuple):
    timestamp: int
    status: CreateAccountStatus


class CreateTransferResult(NamedTuple):
    timestamp: int
    status: CreateTransferStatus


@dataclass(slots=True)
class Account:
    id: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    ledger: int = 0
    code: int = 0
    flags: int = 0
    timestamp: int = 0

    def as_row(self) -> tuple[int, ...]:
        return (
            self.id,
            self.debits_pending,
            self.debits_posted,
            self.credits_pending,
            self.credits_posted,
            self.user_data_128,
            self.user_data_64,
            self.user_data_32,
            self.ledger,
            self.code,
            int(self.flags),
            self.timestamp,
        )

    @classmethod
    def from_row(cls, row: tuple[int, ...]) -> Account:
        a = cls(*row)
        a.flags = AccountFlags(row[10])
        return a


@dataclass(slots=True)
class Transfer:
    id: int = 0
    debit_account_id: int = 0
    credit_account_id: int = 0
    amount: int = 0
    pending_id: int = 0
    user_data_128: int = 0
    user_data_64: int = 0
    user_data_32: int = 0
    timeout: int = 0
    ledger: int = 0
    code: int = 0
    flags: int = 0
    timestamp: int = 0

    def as_row(self) -> tuple[int, ...]:
        return (
            self.id,
            self.debit_account_id,
            self.credit_account_id,
            self.amount,
            self.pending_id,
            self.user_data_128,
            self.user_data_64,
            self.user_data_32,
            self.timeout,
            self.ledger,
            self.code,
            int(self.flags),
            self.timestamp,
        )

    @classmethod
    def from_row(cls, row: tuple[int, ...]) -> Transfer:
        t = cls(*row)
        t.flags = TransferFlags(row[11])
        return t


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """An account's balances right after one of its transfers (HISTORY accounts only), as
    TigerBeetle's `get_account_balances` returns them: `timestamp` is that transfer's timestamp."""

    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    timestamp: int = 0
