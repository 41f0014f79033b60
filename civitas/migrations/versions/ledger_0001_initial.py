"""Ledger tables: accounts, transfers, pending states, failed ids, Merkle leaves and nodes, log
meta, signed checkpoints, device allowances and their per-period spend.

Revision ID: ledger_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from identity.sql import Id128

revision = "ledger_0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = None

_RowIndex = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
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
    )
    op.create_index("ux_ledger_accounts_id", "ledger_accounts", ["id"], unique=True)
    op.create_table(
        "ledger_transfers",
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
    )
    op.create_index("ux_ledger_transfers_id", "ledger_transfers", ["id"], unique=True)
    op.create_index("ix_ledger_transfers_debit", "ledger_transfers", ["debit_account_id", "timestamp"])
    op.create_index("ix_ledger_transfers_credit", "ledger_transfers", ["credit_account_id", "timestamp"])
    op.create_table(
        "ledger_pending",
        sa.Column("id", Id128(), primary_key=True),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at_ns", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_ledger_pending_expiry", "ledger_pending", ["state", "expires_at_ns"])
    op.create_table(
        "ledger_failed_transfers",
        sa.Column("id", Id128(), primary_key=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "ledger_leaves",
        sa.Column("first_leaf_index", _RowIndex, primary_key=True, autoincrement=False),
        sa.Column("leaf_hashes", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("node_index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("node_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "ledger_meta",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("last_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("commit_seq", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_table(
        "ledger_allowances",
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
    )
    op.create_index("ix_ledger_allowances_account", "ledger_allowances", ["account_id"])
    op.create_table(
        "ledger_allowance_spend",
        sa.Column("allowance_id", Id128(), primary_key=True),
        sa.Column("period_index", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("spent_micros", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "ledger_allowance_spend",
        "ledger_allowances",
        "ledger_checkpoints",
        "ledger_meta",
        "ledger_nodes",
        "ledger_leaves",
        "ledger_failed_transfers",
        "ledger_pending",
        "ledger_transfers",
        "ledger_accounts",
    ):
        op.drop_table(name)
