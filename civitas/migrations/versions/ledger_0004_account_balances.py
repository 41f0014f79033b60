"""Ledger: historical balances of HISTORY accounts (TigerBeetle's get_account_balances).

One row per transfer and HISTORY account it debits or credits: the account's balances right after
that transfer. Nothing is carried over: balances after earlier transfers cannot be rebuilt exactly
(the batch that released an expired pending transfer is not recorded), so an account's recorded
history starts with its first transfer after this revision (specs/ledger.md).

Revision ID: ledger_0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ledger_0004"
down_revision = "ledger_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_account_balances",
        sa.Column("account_timestamp", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("timestamp", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("side", sa.SmallInteger(), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("ledger_account_balances")
