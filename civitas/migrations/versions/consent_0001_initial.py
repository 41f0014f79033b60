"""Consent tables: records, append-only events with receipts, scopes and grant intervals, the
consent event Merkle log, devices, recipients, reading batches and counts, minimised readings and
the citizens' access log. No foreign keys into other domains.

Revision ID: consent_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from identity.sql import Id128

revision = "consent_0001"
down_revision = None
branch_labels = ("consent",)
depends_on = None

_RowIndex = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consent_access_log",
        sa.Column("id", _RowIndex, primary_key=True),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("recipient", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("last_ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_consent_access_log_subject", "consent_access_log", ["subject"])
    op.create_table(
        "consent_batch_counts",
        sa.Column("batch_id", Id128(), primary_key=True),
        sa.Column("category", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("dropped_no_consent", sa.Integer(), nullable=False),
        sa.Column("dropped_future", sa.Integer(), nullable=False),
        sa.Column("reward_micros", sa.BigInteger(), nullable=False),
        sa.Column("reward_state", sa.String(8), nullable=False),
        sa.Column("reward_attempt", sa.Integer(), nullable=False),
    )
    op.create_index("ix_consent_batch_counts_reward_state", "consent_batch_counts", ["reward_state"])
    op.create_index("ix_consent_batch_counts_unit", "consent_batch_counts", ["unit"])
    op.create_table(
        "consent_batches",
        sa.Column("batch_id", Id128(), primary_key=True),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("received_ns", sa.BigInteger(), nullable=False),
        sa.Column("readings", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("dropped", sa.Integer(), nullable=False),
    )
    op.create_index("ix_consent_batches_device_id", "consent_batches", ["device_id"])
    op.create_table(
        "consent_devices",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=True, unique=True),
        sa.Column("serial", sa.String(128), nullable=True),
        sa.Column("reward_account_id", Id128(), nullable=True),
        sa.Column("registered_ns", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ns", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_consent_devices_owner", "consent_devices", ["owner"])
    op.create_table(
        "consent_events",
        sa.Column("event_seq", _RowIndex, primary_key=True),
        sa.Column("record_id", Id128(), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at_ns", sa.BigInteger(), nullable=False),
        sa.Column("valid_until_ns", sa.BigInteger(), nullable=True),
        sa.Column("log_index", sa.BigInteger(), nullable=False, unique=True),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("receipt_id", sa.String(36), nullable=False, unique=True),
        sa.Column("receipt_jws", sa.Text(), nullable=False),
    )
    op.create_index("ix_consent_events_record_id", "consent_events", ["record_id"])
    op.create_index("ix_consent_events_subject", "consent_events", ["subject"])
    op.create_table(
        "consent_grant_sets",
        sa.Column("set_id", Id128(), primary_key=True),
        sa.Column("record_id", Id128(), primary_key=True),
    )
    op.create_table(
        "consent_grants",
        sa.Column("record_id", Id128(), primary_key=True),
        sa.Column("start_ns", sa.BigInteger(), primary_key=True),
        sa.Column("end_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "consent_log_checkpoints",
        sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "consent_log_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "consent_log_nodes",
        sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "consent_readings",
        sa.Column("id", _RowIndex, primary_key=True),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("grant_set_id", Id128(), nullable=True),
        sa.Column("retain_until_ns", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_consent_readings_ts_ns", "consent_readings", ["ts_ns"])
    op.create_table(
        "consent_recipients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("purposes", sa.Text(), nullable=False),
        sa.Column("registered_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "consent_records",
        sa.Column("record_id", Id128(), primary_key=True),
        sa.Column("schema_version", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("controller", sa.String(200), nullable=False),
        sa.Column("notice_id", sa.String(200), nullable=False),
        sa.Column("notice_version", sa.String(64), nullable=False),
        sa.Column("notice_sha256", sa.String(64), nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("purposes", sa.Text(), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.String(64), nullable=False),
        sa.Column("jurisdiction", sa.String(8), nullable=False),
        sa.Column("retention_s", sa.BigInteger(), nullable=False),
        sa.Column("withdrawal_method", sa.String(200), nullable=False),
        sa.Column("valid_from_ns", sa.BigInteger(), nullable=False),
        sa.Column("valid_until_ns", sa.BigInteger(), nullable=False),
        sa.Column("current_until_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_ns", sa.BigInteger(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("supersedes", Id128(), nullable=True),
    )
    op.create_index("ix_consent_records_subject", "consent_records", ["subject"])
    op.create_table(
        "consent_scopes",
        sa.Column("record_id", Id128(), primary_key=True),
        sa.Column("recipient", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(64), primary_key=True),
    )
    op.create_index("ix_consent_scopes_recipient_purpose", "consent_scopes", ["recipient", "purpose"])
    op.create_table(
        "consent_subjects",
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("consent_subjects")
    op.drop_table("consent_scopes")
    op.drop_table("consent_records")
    op.drop_table("consent_recipients")
    op.drop_table("consent_readings")
    op.drop_table("consent_log_nodes")
    op.drop_table("consent_log_head")
    op.drop_table("consent_log_checkpoints")
    op.drop_table("consent_grants")
    op.drop_table("consent_grant_sets")
    op.drop_table("consent_events")
    op.drop_table("consent_devices")
    op.drop_table("consent_batches")
    op.drop_table("consent_batch_counts")
    op.drop_table("consent_access_log")
