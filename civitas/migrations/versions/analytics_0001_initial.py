"""Analytics tables: privacy budgets per dataset and analyst, releases, charges.

Revision ID: analytics_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from identity.sql import Id128

revision = "analytics_0001"
down_revision = None
branch_labels = ("analytics",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_dataset_budgets",
        sa.Column("dataset", sa.String(64), primary_key=True),
        sa.Column("period_start_ns", sa.BigInteger(), primary_key=True),
        sa.Column("limit_rho_nano", sa.BigInteger(), nullable=False),
        sa.Column("spent_rho_nano", sa.BigInteger(), nullable=False),
        sa.Column("limit_delta_pico", sa.BigInteger(), nullable=False),
        sa.Column("spent_delta_pico", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("spent_rho_nano >= 0 AND spent_rho_nano <= limit_rho_nano", name="ck_dataset_rho"),
        sa.CheckConstraint(
            "spent_delta_pico >= 0 AND spent_delta_pico <= limit_delta_pico", name="ck_dataset_delta"
        ),
    )
    op.create_table(
        "analytics_analyst_budgets",
        sa.Column("dataset", sa.String(64), primary_key=True),
        sa.Column("period_start_ns", sa.BigInteger(), primary_key=True),
        sa.Column("analyst", sa.String(128), primary_key=True),
        sa.Column("limit_rho_nano", sa.BigInteger(), nullable=False),
        sa.Column("spent_rho_nano", sa.BigInteger(), nullable=False),
        sa.Column("limit_delta_pico", sa.BigInteger(), nullable=False),
        sa.Column("spent_delta_pico", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("spent_rho_nano >= 0 AND spent_rho_nano <= limit_rho_nano", name="ck_analyst_rho"),
        sa.CheckConstraint(
            "spent_delta_pico >= 0 AND spent_delta_pico <= limit_delta_pico", name="ck_analyst_delta"
        ),
    )
    op.create_table(
        "analytics_releases",
        sa.Column("id", Id128(), primary_key=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("query_hash", sa.String(80), nullable=False, unique=True),
        sa.Column("analyst", sa.String(128), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("rho_nano", sa.BigInteger(), nullable=False),
        sa.Column("delta_pico", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_analytics_releases_created_ns", "analytics_releases", ["created_ns"])
    op.create_table(
        "analytics_charges",
        sa.Column("release_id", Id128(), sa.ForeignKey("analytics_releases.id"), primary_key=True),
        sa.Column("period_start_ns", sa.BigInteger(), primary_key=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("analyst", sa.String(128), nullable=False),
        sa.Column("rho_nano", sa.BigInteger(), nullable=False),
        sa.Column("delta_pico", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("analytics_charges")
    op.drop_index("ix_analytics_releases_created_ns", table_name="analytics_releases")
    op.drop_table("analytics_releases")
    op.drop_table("analytics_analyst_budgets")
    op.drop_table("analytics_dataset_budgets")
