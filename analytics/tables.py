"""Analytics tables: privacy budgets (per dataset and per analyst, per period), releases, charges.

Budgets are integers: rho in nano-units (1e-9) and delta in pico-units (1e-12); every charge is
rounded up, so the stored spend never understates the privacy loss and composition (a sum) is exact.
"""

from __future__ import annotations

import sqlalchemy as sa

from identity.sql import Id128

__all__ = [
    "TABLES",
    "analyst_budgets",
    "charges",
    "create_schema",
    "dataset_budgets",
    "metadata",
    "releases",
]

metadata = sa.MetaData()

dataset_budgets = sa.Table(
    "analytics_dataset_budgets",
    metadata,
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

analyst_budgets = sa.Table(
    "analytics_analyst_budgets",
    metadata,
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

releases = sa.Table(
    "analytics_releases",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("query_hash", sa.String(80), nullable=False, unique=True),
    sa.Column("analyst", sa.String(128), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False, index=True),
    sa.Column("rho_nano", sa.BigInteger(), nullable=False),
    sa.Column("delta_pico", sa.BigInteger(), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
)

charges = sa.Table(
    "analytics_charges",
    metadata,
    sa.Column("release_id", Id128(), sa.ForeignKey("analytics_releases.id"), primary_key=True),
    sa.Column("period_start_ns", sa.BigInteger(), primary_key=True),
    sa.Column("dataset", sa.String(64), nullable=False),
    sa.Column("analyst", sa.String(128), nullable=False),
    sa.Column("rho_nano", sa.BigInteger(), nullable=False),
    sa.Column("delta_pico", sa.BigInteger(), nullable=False),
)

TABLES: list[sa.Table] = list(metadata.sorted_tables)


def create_schema(engine: sa.Engine) -> None:
    """Create the analytics tables (idempotent; the service uses the Alembic migration instead)."""
    metadata.create_all(engine)
