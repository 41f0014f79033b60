"""Ledger schema (SQLAlchemy Core, its own MetaData) and `create_schema(engine)` for library use.

The service applies the same schema through civitas/migrations/versions/ledger_0001_initial.py.
Amounts, balances and timestamps are BIGINT (signed 64-bit: amounts are bounded to < 2^63).
`user_data_64` is an unsigned 64-bit value stored in BIGINT as its two's-complement bit pattern.
Accounts and transfers are keyed by their ledger timestamp (unique, strictly increasing; the rowid
on SQLite, as TigerBeetle keys objects by timestamp): new transfers append at the end of the table,
balance updates address accounts by an integer key, and a unique index maps the 128-bit id.
"""

from __future__ import annotations

import sqlalchemy as sa

from identity.sql import Id128

__all__ = [
    "TABLES",
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
    "transfers",
]

metadata = sa.MetaData()

# A plain INTEGER PRIMARY KEY on SQLite is the rowid (cheapest append); BIGINT on PostgreSQL.
_RowIndex = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

accounts = sa.Table(
    "ledger_accounts",
    metadata,
    sa.Column("timestamp", _RowIndex, primary_key=True, autoincrement=False),
    sa.Column("id", Id128(), nullable=False),
    sa.Column("debits_pending", sa.BigInteger(), nullable=False),
    sa.Column("debits_posted", sa.BigInteger(), nullable=False),
    sa.Column("credits_pending", sa.BigInteger(), nullable=False),
    sa.Column("credits_posted", sa.BigInteger(), nullable=False),
    sa.Column("user_data_128", Id128(), nullable=False),
    sa.Column("user_data_64", sa.BigInteger(), nullable=False),
    sa.Column("user_data_32", sa.BigInteger(), nullable=False),
    sa.Column("ledger", sa.BigInteger(), nullable=False),
    sa.Column("code", sa.Integer(), nullable=False),
    sa.Column("flags", sa.Integer(), nullable=False),
    sa.Index("ux_ledger_accounts_id", "id", unique=True),
)

transfers = sa.Table(
    "ledger_transfers",
    metadata,
    sa.Column("timestamp", _RowIndex, primary_key=True, autoincrement=False),
    sa.Column("id", Id128(), nullable=False),
    sa.Column("debit_account_id", Id128(), nullable=False),
    sa.Column("credit_account_id", Id128(), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.Column("pending_id", Id128(), nullable=False),
    sa.Column("user_data_128", Id128(), nullable=False),
    sa.Column("user_data_64", sa.BigInteger(), nullable=False),
    sa.Column("user_data_32", sa.BigInteger(), nullable=False),
    sa.Column("timeout", sa.BigInteger(), nullable=False),
    sa.Column("ledger", sa.BigInteger(), nullable=False),
    sa.Column("code", sa.Integer(), nullable=False),
    sa.Column("flags", sa.Integer(), nullable=False),
    sa.Index("ux_ledger_transfers_id", "id", unique=True),
    sa.Index("ix_ledger_transfers_debit", "debit_account_id", "timestamp"),
    sa.Index("ix_ledger_transfers_credit", "credit_account_id", "timestamp"),
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
    transfers,
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
