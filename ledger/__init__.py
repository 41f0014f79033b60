"""Micropayment ledger: double-entry engine, SQL store, Merkle log and signed checkpoints.

The API mirrors TigerBeetle's Python client: `Ledger.open(url)`, `create_accounts`,
`create_transfers`, `lookup_accounts`, `lookup_transfers`, `get_account_transfers`,
`get_account_balances` (HISTORY accounts), with
`Account` / `Transfer` dataclasses and `AccountFlags`, `TransferFlags`, `CreateAccountStatus`,
`CreateTransferStatus` enums. See specs/ledger.md and specs/transparency-log.md.
"""

from . import merkle, note
from .allowances import Allowance, AllowanceError, Allowances, PaymentRequest
from .audit import AuditReport, audit
from .committer import GroupCommitter
from .cosignatures import CosignatureError, Cosignatures
from .gate import AccountGate, Admission, GateRefusedError, SubjectGate, account_id_for, owner_tag
from .proofs import TransferProof, transfer_inclusion_proof, verify_transfer_inclusion
from .store import DEFAULT_ORIGIN, Ledger
from .tables import create_schema
from .types import (
    AMOUNT_MAX,
    BALANCE_MAX,
    BATCH_MAX,
    ID_MAX,
    TRANSIENT_TRANSFER_STATUSES,
    Account,
    AccountBalance,
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
from .witness import Witness, WitnessConflictError, WitnessError, verify_checkpoint

__all__ = [
    "AMOUNT_MAX",
    "BALANCE_MAX",
    "BATCH_MAX",
    "DEFAULT_ORIGIN",
    "ID_MAX",
    "TRANSIENT_TRANSFER_STATUSES",
    "Account",
    "AccountBalance",
    "AccountFlags",
    "AccountGate",
    "Admission",
    "Allowance",
    "AllowanceError",
    "Allowances",
    "AuditReport",
    "BatchTooLargeError",
    "CosignatureError",
    "Cosignatures",
    "CreateAccountResult",
    "CreateAccountStatus",
    "CreateTransferResult",
    "CreateTransferStatus",
    "GateRefusedError",
    "GroupCommitter",
    "Ledger",
    "LedgerError",
    "LedgerInvariantError",
    "LedgerValueError",
    "PaymentRequest",
    "PendingState",
    "SubjectGate",
    "Transfer",
    "TransferFlags",
    "TransferProof",
    "Witness",
    "WitnessConflictError",
    "WitnessError",
    "account_id_for",
    "audit",
    "create_schema",
    "merkle",
    "note",
    "owner_tag",
    "transfer_inclusion_proof",
    "verify_checkpoint",
    "verify_transfer_inclusion",
]
