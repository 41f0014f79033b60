"""Ledger schema (SQLAlchemy Core, its own MetaData) and `create_schema(engine)` for library use.

The service applies the same schema through the ledger branch of civitas/migrations/versions/.
Amounts, balances and timestamps are BIGINT (signed 64-bit: amounts are bounded to < 2^63).
`user_data_64` is an unsigned 64-bit value stored in BIGINT as its two's-complement bit pattern.

Accounts are keyed by their ledger timestamp (unique, strictly increasing; the rowid on SQLite, as
TigerBeetle keys objects by timestamp) with a unique index on the 128-bit id; what changes after
creation (balances, flags, the head of the account's history) is a narrow row of its own, so a
batch rewrites only small rows. Transfers are written once and never change: their canonical
128-byte encodings (ledger/codec.py) are stored in blocks of consecutive transfers, with an id
index beside them. An account's history is one row per batch that touched it, appended at the end
of its table (no random inserts into a growing index) and chained to the account's previous row.
Accounts with HISTORY also get one row of balances per transfer (`ledger_account_balances`).
"""

from __future__ import annotations

import sqlalchemy as sa

from identity.sql import Id128

__all__ = [
    "TABLES",
    "account_balances",
    "accounts",
    "allowance_reservations",
    "allowance_spend",
    "allowances",
    "checkpoints",
    "cosignatures",
    "create_schema",
    "failed_transfers",
    "leaves",
    "meta",
    "metadata",
    "nodes",
    "pending",
    "transfer_blocks",
    "transfers",
]

metadata = sa.MetaData()

TRANSFER_BLOCK = 31  # transfers per ledger_transfer_blocks row: 3,968 bytes, so one row fills a 4 KiB page

# A plain INTEGER PRIMARY KEY on SQLite is the rowid (cheapest append); BIGINT on PostgreSQL.
_RowIndex = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("timestamp", _RowIndex, primary_key=True, autoincrement=False),
    sa.Column("id", Id128(), nullable=False),
    sa.Column("user_data_128", Id128(), nullable=False),
    sa.Column("user_data_64", sa.BigInteger(), nullable=False),
    sa.Column("user_data_32", sa.BigInteger(), nullable=False),
    sa.Column("ledger", sa.BigInteger(), nullable=False),
    sa.Column("code", sa.Integer(), nullable=False),
    sa.Index("ux_ledger_accounts_id", "id", unique=True),
)

# The mutable part of an account, keyed by the account's timestamp. `history_head` is the `seq` of
# the account's latest history row (0: no transfers yet).
balances = sa.Table(
    "ledger_balances",
    metadata,
    sa.Column("timestamp", _RowIndex, primary_key=True, autoincrement=False),
    sa.Column("debits_pending", sa.BigInteger(), nullable=False),
    sa.Column("debits_posted", sa.BigInteger(), nullable=False),
    sa.Column("credits_pending", sa.BigInteger(), nullable=False),
    sa.Column("credits_posted", sa.BigInteger(), nullable=False),
    sa.Column("flags", sa.Integer(), nullable=False),
    sa.Column("history_head", sa.BigInteger(), nullable=False),
)

# The committed transfers: id -> ledger timestamp. Their fields are in ledger_transfer_blocks.
transfers = sa.Table(
    "ledger_transfers",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("timestamp", sa.BigInteger(), nullable=False),
    sqlite_with_rowid=False,
)

# Up to TRANSFER_BLOCK consecutive transfers (ascending timestamps, never across batches): their
# canonical encodings concatenated, keyed by the first one's timestamp. `first_leaf_index` is that
# transfer's Merkle leaf index (leaf i is the i-th transfer in timestamp order).
transfer_blocks = sa.Table(
    "ledger_transfer_blocks",
    metadata,
    sa.Column("first_timestamp", _RowIndex, primary_key=True, autoincrement=False),
    sa.Column("first_leaf_index", sa.BigInteger(), nullable=False),
    sa.Column("transfers", sa.LargeBinary(), nullable=False),
)

# One row per (batch, account) for the transfers of a batch that debit or credit the account, numbered
# in the order they are written (`seq`, so a batch only appends at the table's end):
# `entries` holds one little-endian u16 per transfer, (timestamp - batch_timestamp) << 1 | side
# (0 debit, 1 credit), ascending; `batch_timestamp` is the timestamp of the batch's first transfer;
# `previous_seq` is the account's previous row (0: none).
account_history = sa.Table(
    "ledger_account_history",
    metadata,
    sa.Column("seq", _RowIndex, primary_key=True, autoincrement=False),
    sa.Column("account_timestamp", sa.BigInteger(), nullable=False),
    sa.Column("batch_timestamp", sa.BigInteger(), nullable=False),
    sa.Column("previous_seq", sa.BigInteger(), nullable=False),
    sa.Column("entries", sa.LargeBinary(), nullable=False),
)

# HISTORY accounts (migration ledger_0004): the balances right after each transfer that debits
# (side 0) or credits (side 1) the account, keyed by (account timestamp, transfer timestamp), so a
# page of one account's balances is one range of the primary key (the table itself on SQLite).
# Written in the batch's transaction; expiries add no row (TigerBeetle's get_account_balances).
account_balances = sa.Table(
    "ledger_account_balances",
    metadata,
    sa.Column("account_timestamp", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("timestamp", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("side", sa.SmallInteger(), nullable=False),
    sa.Column("debits_pending", sa.BigInteger(), nullable=False),
    sa.Column("debits_posted", sa.BigInteger(), nullable=False),
    sa.Column("credits_pending", sa.BigInteger(), nullable=False),
    sa.Column("credits_posted", sa.BigInteger(), nullable=False),
    sqlite_with_rowid=False,
)
pending = sa.Table(
    "ledger_pending",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("state", sa.Integer(), nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
    sa.Column("resolved_at_ns", sa.BigInteger(), nullable=False),
    sa.Index("ix_ledger_pending_expiry", "state", "expires_at_ns"),
)

failed_transfers = sa.Table(
    "ledger_failed_transfers",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("timestamp", sa.BigInteger(), nullable=False),
)

# One row per batch: the leaf hashes of leaves first_leaf_index .. first_leaf_index + n - 1,
# concatenated (32 * n bytes).
leaves = sa.Table(
    "ledger_leaves",
    metadata,
    sa.Column("first_leaf_index", _RowIndex, primary_key=True, autoincrement=False),
    sa.Column("leaf_hashes", sa.LargeBinary(), nullable=False),
)

nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("node_index", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("node_hash", sa.LargeBinary(32), nullable=False),
)

meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("last_timestamp", sa.BigInteger(), nullable=False),
    sa.Column("tree_size", sa.BigInteger(), nullable=False),
    sa.Column("frontier", sa.LargeBinary(), nullable=False),
    sa.Column("commit_seq", sa.BigInteger(), nullable=False),
)

checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("timestamp", sa.BigInteger(), nullable=False),
    sa.Column("note", sa.Text(), nullable=False),
)

allowances = sa.Table(
    "ledger_allowances",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("account_id", Id128(), nullable=False),
    sa.Column("device_public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("cap_micros", sa.BigInteger(), nullable=False),
    sa.Column("period_ns", sa.BigInteger(), nullable=False),
    sa.Column("starts_at_ns", sa.BigInteger(), nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
    sa.Column("revoked_at_ns", sa.BigInteger(), nullable=False),
    sa.Column("ledger", sa.BigInteger(), nullable=False),
    sa.Column("code", sa.Integer(), nullable=False),
    sa.Column("created_at_ns", sa.BigInteger(), nullable=False),
    sa.Index("ix_ledger_allowances_account", "account_id"),
)

allowance_spend = sa.Table(
    "ledger_allowance_spend",
    metadata,
    sa.Column("allowance_id", Id128(), primary_key=True),
    sa.Column("period_index", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("spent_micros", sa.BigInteger(), nullable=False),
)

# Open reservations charged to an allowance (migration ledger_0002): a row lives until the reservation
# is posted, voided or found expired, which refunds its amount to the period it was charged in.
allowance_reservations = sa.Table(
    "ledger_allowance_reservations",
    metadata,
    sa.Column("pending_id", Id128(), primary_key=True),
    sa.Column("allowance_id", Id128(), nullable=False),
    sa.Column("period_index", sa.BigInteger(), nullable=False),
    sa.Column("amount_micros", sa.BigInteger(), nullable=False),
    sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),  # 0: no timeout
    sa.Index("ix_ledger_allowance_reservations_expiry", "allowance_id", "expires_at_ns"),
)

# Witness cosignatures (C2SP tlog-cosignature lines) collected per checkpoint size (ledger_0002).
cosignatures = sa.Table(
    "ledger_cosignatures",
    metadata,
    sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("witness_key", sa.String(400), primary_key=True),
    sa.Column("cosigned_at_s", sa.BigInteger(), nullable=False),
    sa.Column("line", sa.Text(), nullable=False),
    sa.Column("received_at_ns", sa.BigInteger(), nullable=False),
)


TABLES = [
    accounts,
    balances,
    transfers,
    transfer_blocks,
    account_history,
    account_balances,
    pending,
    failed_transfers,
    leaves,
    nodes,
    meta,
    checkpoints,
    allowances,
    allowance_spend,
    allowance_reservations,
    cosignatures,
]


def create_schema(engine: sa.Engine) -> None:
    """Create the ledger tables if missing (library use; the service runs the Alembic migration)."""
    metadata.create_all(engine)
