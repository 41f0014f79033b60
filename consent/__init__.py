"""Consent records, policy decisions, the sensor-reading gateway, access log and rewards.

Public API: records and their lifecycle (`ConsentTerms`, `Notice`, `Status`), the store
(`ConsentStore`: give / request / accept / refuse / withdraw / revoke / renew / change_notice),
receipts (`ReceiptSigner`, `verify_receipt`), devices (`register_device`), signed batches
(`sign_batch`, `SignedBatch`), ingest (`Gateway`), sharing (`share_page`, `access_log`,
`analytics_readings_select`) and rewards (`RewardConfig`, `RewardPayer`).
"""

from consent.batches import (
    MAX_BATCH_BYTES,
    MAX_READINGS,
    BadSignature,
    Batch,
    BatchError,
    BatchTooLarge,
    InvalidBatch,
    Reading,
    SignedBatch,
    sign_batch,
)
from consent.devices import (
    Device,
    DeviceError,
    DeviceKind,
    UnknownDevice,
    check_registration,
    register_device,
    register_devices,
    revoke_device,
)
from consent.gateway import BatchResult, Gateway, GatewayConfig, PolicyCache
from consent.minimise import DEFAULT_GRID, DistrictGrid
from consent.policy import Grant, GrantSet, PolicyIndex
from consent.receipts import ControllerInfo, ReceiptError, ReceiptSigner, verify_receipt
from consent.records import (
    ConsentError,
    ConsentTerms,
    IllegalTransition,
    InvalidRecord,
    Notice,
    NoticeChanged,
    format_id,
    parse_id,
)
from consent.rewards import RewardConfig, RewardPayer, reward_transfer_id
from consent.sharing import (
    PurposeNotDeclared,
    SharePage,
    access_log,
    analytics_readings_select,
    purge_readings,
    register_recipient,
    share_page,
)
from consent.store import ConsentNotFound, ConsentStore, EventReceipt, RecordView
from consent.tables import create_schema
from consent.vocab import Status

__all__ = [
    "DEFAULT_GRID",
    "MAX_BATCH_BYTES",
    "MAX_READINGS",
    "BadSignature",
    "Batch",
    "BatchError",
    "BatchResult",
    "BatchTooLarge",
    "ConsentError",
    "ConsentNotFound",
    "ConsentStore",
    "ConsentTerms",
    "ControllerInfo",
    "Device",
    "DeviceError",
    "DeviceKind",
    "DistrictGrid",
    "EventReceipt",
    "Gateway",
    "GatewayConfig",
    "Grant",
    "GrantSet",
    "IllegalTransition",
    "InvalidBatch",
    "InvalidRecord",
    "Notice",
    "NoticeChanged",
    "PolicyCache",
    "PolicyIndex",
    "PurposeNotDeclared",
    "Reading",
    "ReceiptError",
    "ReceiptSigner",
    "RecordView",
    "RewardConfig",
    "RewardPayer",
    "SharePage",
    "SignedBatch",
    "Status",
    "UnknownDevice",
    "access_log",
    "analytics_readings_select",
    "check_registration",
    "create_schema",
    "format_id",
    "parse_id",
    "purge_readings",
    "register_device",
    "register_devices",
    "register_recipient",
    "revoke_device",
    "reward_transfer_id",
    "share_page",
    "sign_batch",
    "verify_receipt",
]
