"""Micropayment ledger: double-entry engine, SQL store, Merkle log and signed checkpoints.

The API mirrors TigerBeetle's Python client: `Ledger.open(url)`, `create_accounts`,
`create_transfers`, `lookup_accounts`, `lookup_transfers`, `get_account_transfers`, with
`Account` / `Transfer` dataclasses and `AccountFlags`, `TransferFlags`, `CreateAccountStatus`,
`CreateTransferStatus` enums. See specs/ledger.md and specs/transparency-log.md.
"""

from . import merkle, note
from .audit import AuditReport, audit
from .committer import GroupCommitter
from .store import DEFAULT_ORIGIN, Ledger
from .tables import create_schema
from .types import (
    AMOUNT_MAX,
    BALANCE_MAX,
    BATCH_MAX,
    ID_MAX,
    TRANSIENT_TRANSFER_STATUSES,
    Account,
    AccountFlags,
    BatchTooLargeError,
    CreateAccountResult,
    CreateAccountStatus,
    CreateTransferResult,
    CreateTransferStatus,
    LedgerError,
    LedgerInvariantError,
    LedgerValueError,
    PendingState,
    Transfer,
    TransferFlags,
)

__all__ = [
    "AMOUNT_MAX",
    "BALANCE_MAX",
    "BATCH_MAX",
    "DEFAULT_ORIGIN",
    "ID_MAX",
    "TRANSIENT_TRANSFER_STATUSES",
    "Account",
    "AccountFlags",
    "AuditReport",
    "BatchTooLargeError",
    "CreateAccountResult",
    "CreateAccountStatus",
    "CreateTransferResult",
    "CreateTransferStatus",
    "GroupCommitter",
    "Ledger",
    "LedgerError",
    "LedgerInvariantError",
    "LedgerValueError",
    "PendingState",
    "Transfer",
    "TransferFlags",
    "audit",
    "create_schema",
    "merkle",
    "note",
]
