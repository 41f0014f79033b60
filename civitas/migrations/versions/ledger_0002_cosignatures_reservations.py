"""Ledger: witness cosignatures per checkpoint; open allowance reservations (so an expired one
stops counting against its allowance's cap).

Existing reservations that are still pending or already expired are copied in, so their charge
is refunded by the same rule as new ones.

Revision ID: ledger_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from identity.sql import Id128

revision = "ledger_0002"
down_revision = "ledger_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_allowance_reservations",
        sa.Column("pending_id", Id128(), primary_key=True),
        sa.Column("allowance_id", Id128(), nullable=False),
        sa.Column("period_index", sa.BigInteger(), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_ledger_allowance_reservations_expiry",
        "ledger_allowance_reservations",
        ["allowance_id", "expires_at_ns"],
    )
    op.create_table(
        "ledger_cosignatures",
        sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("witness_key", sa.String(400), primary_key=True),
        sa.Column("cosigned_at_s", sa.BigInteger(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("received_at_ns", sa.BigInteger(), nullable=False),
    )
    # Pending (1) or expired (4) reservations made through an allowance (its id in user_data_128,
    # debiting its account); the period index is counted from the allowance's start.
    op.execute(
        "INSERT INTO ledger_allowance_reservations "
        "(pending_id, allowance_id, period_index, amount_micros, expires_at_ns) "
        "SELECT t.id, a.id, (t.timestamp - a.starts_at_ns) / a.period_ns, t.amount, p.expires_at_ns "
        "FROM ledger_transfers t "
        "JOIN ledger_allowances a ON a.id = t.user_data_128 AND a.account_id = t.debit_account_id "
        "JOIN ledger_pending p ON p.id = t.id "
        "WHERE p.state IN (1, 4) AND (t.flags & 2) = 2"
    )


def downgrade() -> None:
    op.drop_table("ledger_cosignatures")
    op.drop_index("ix_ledger_allowance_reservations_expiry", "ledger_allowance_reservations")
    op.drop_table("ledger_allowance_reservations")
