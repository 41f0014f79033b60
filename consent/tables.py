"""Consent tables (SQLAlchemy Core) and `create_schema` for library use.

The service applies the same schema with the Alembic migration
``civitas/migrations/versions/consent_0001_initial.py``; a test compares the two. No table here
references another domain's tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from identity.sql import Id128

__all__ = [
    "TABLES",
    "access_log",
    "batch_counts",
    "batches",
    "create_schema",
    "devices",
    "events",
    "grant_set_members",
    "grants",
    "log_checkpoints",
    "log_head",
    "log_nodes",
    "metadata",
    "readings",
    "recipients",
    "records",
    "scopes",
    "subjects",
]

metadata = sa.MetaData()

# One row per citizen with consent state; its version is bumped by every consent change, and
# ingest takes a shared lock on it, so a change waits for in-flight batches of that citizen.
subjects = sa.Table(
    "consent_subjects",
    metadata,
    sa.Column("subject", sa.String(128), primary_key=True),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("updated_ns", sa.BigInteger(), nullable=False),
)

records = sa.Table(
    "consent_records",
    metadata,
    sa.Column("record_id", Id128(), primary_key=True),
    sa.Column("schema_version", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("controller", sa.String(200), nullable=False),
    sa.Column("notice_id", sa.String(200), nullable=False),
    sa.Column("notice_version", sa.String(64), nullable=False),
    sa.Column("notice_sha256", sa.String(64), nullable=False),
    sa.Column("language", sa.String(35), nullable=False),
    sa.Column("purposes", sa.Text(), nullable=False),  # JSON array of DPV terms, sorted
    sa.Column("categories", sa.Text(), nullable=False),
    sa.Column("recipients", sa.Text(), nullable=False),
    sa.Column("legal_basis", sa.String(64), nullable=False),
    sa.Column("jurisdiction", sa.String(8), nullable=False),
    sa.Column("retention_s", sa.BigInteger(), nullable=False),
    sa.Column("withdrawal_method", sa.String(200), nullable=False),
    sa.Column("valid_from_ns", sa.BigInteger(), nullable=False),
    sa.Column("valid_until_ns", sa.BigInteger(), nullable=False),  # the original validity end
    sa.Column("current_until_ns", sa.BigInteger(), nullable=False),  # after renewals
    sa.Column("status", sa.String(16), nullable=False),  # last written status
    sa.Column("status_ns", sa.BigInteger(), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
    sa.Column("supersedes", Id128(), nullable=True),
)

# Append-only: rows are inserted, never updated or deleted.
events = sa.Table(
    "consent_events",
    metadata,
    sa.Column("event_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("record_id", Id128(), nullable=False, index=True),
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at_ns", sa.BigInteger(), nullable=False),
    sa.Column("valid_until_ns", sa.BigInteger(), nullable=True),
    sa.Column("log_index", sa.BigInteger(), nullable=False, unique=True),
    sa.Column("leaf", sa.LargeBinary(), nullable=False),  # the exact bytes logged
    sa.Column("receipt_id", sa.String(36), nullable=False, unique=True),
    sa.Column("receipt_jws", sa.Text(), nullable=False),
)

# (recipient, purpose) pairs a record allows, for the SQL side of sharing.
scopes = sa.Table(
    "consent_scopes",
    metadata,
    sa.Column("record_id", Id128(), primary_key=True),
    sa.Column("recipient", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(64), primary_key=True),
    sa.Index("ix_consent_scopes_recipient_purpose", "recipient", "purpose"),
)

# Intervals in which a record permits processing; rewritten with each event of the record.
grants = sa.Table(
    "consent_grants",
    metadata,
    sa.Column("record_id", Id128(), primary_key=True),
    sa.Column("start_ns", sa.BigInteger(), primary_key=True),
    sa.Column("end_ns", sa.BigInteger(), nullable=False),
)

# A stored reading names the set of records that permitted it; the set's members are here.
grant_set_members = sa.Table(
    "consent_grant_sets",
    metadata,
    sa.Column("set_id", Id128(), primary_key=True),
    sa.Column("record_id", Id128(), primary_key=True),
)

# Merkle log of consent events (RFC 9162 via ledger.merkle): every perfect subtree hash, level 0
# being the leaf hashes, so proofs never rehash the whole log.
log_nodes = sa.Table(
    "consent_log_nodes",
    metadata,
    sa.Column("level", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

# Single row (id = 1): the log size and its frontier (compact range); locked by every append so
# appends are serialised.
log_head = sa.Table(
    "consent_log_head",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("frontier", sa.LargeBinary(), nullable=False),
)

log_checkpoints = sa.Table(
    "consent_log_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text(), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
)

devices = sa.Table(
    "consent_devices",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # personal | public
    sa.Column("owner", sa.String(128), nullable=True, index=True),
    sa.Column("public_key", sa.LargeBinary(32), nullable=False),
    sa.Column("client_id", sa.String(64), nullable=True, unique=True),
    sa.Column("serial", sa.String(128), nullable=True),  # kept here only, never with readings
    sa.Column("reward_account_id", Id128(), nullable=True),
    sa.Column("registered_ns", sa.BigInteger(), nullable=False),
    sa.Column("revoked_ns", sa.BigInteger(), nullable=True),
)

# Agencies (OAuth2 client ids) and the purposes they declared.
recipients = sa.Table(
    "consent_recipients",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("purposes", sa.Text(), nullable=False),  # JSON array of DPV purposes
    sa.Column("registered_ns", sa.BigInteger(), nullable=False),
)

batches = sa.Table(
    "consent_batches",
    metadata,
    sa.Column("batch_id", Id128(), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False, index=True),
    sa.Column("received_ns", sa.BigInteger(), nullable=False),
    sa.Column("readings", sa.Integer(), nullable=False),
    sa.Column("accepted", sa.Integer(), nullable=False),
    sa.Column("dropped", sa.Integer(), nullable=False),
)

# Per batch and category: how many readings were accepted and dropped (never their content),
# and the reward owed for the accepted ones (one ledger transfer per row, id derived from
# batch id, category and attempt).
batch_counts = sa.Table(
    "consent_batch_counts",
    metadata,
    sa.Column("batch_id", Id128(), primary_key=True),
    sa.Column("category", sa.String(64), primary_key=True),
    sa.Column("unit", sa.String(128), nullable=False, index=True),
    sa.Column("accepted", sa.Integer(), nullable=False),
    sa.Column("dropped_no_consent", sa.Integer(), nullable=False),
    sa.Column("dropped_future", sa.Integer(), nullable=False),
    sa.Column("reward_micros", sa.BigInteger(), nullable=False),
    sa.Column("reward_state", sa.String(8), nullable=False),  # none | pending | paid
    sa.Column("reward_attempt", sa.Integer(), nullable=False),
    sa.Index("ix_consent_batch_counts_reward_state", "reward_state"),
)

# Minimised readings: unit (owner pseudonym or public device id), district, minute; no serial.
readings = sa.Table(
    "consent_readings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("unit", sa.String(128), nullable=False),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("district", sa.String(64), nullable=False),
    sa.Column("ts_ns", sa.BigInteger(), nullable=False, index=True),
    sa.Column("value", sa.Float(), nullable=False),
    sa.Column("grant_set_id", Id128(), nullable=True),  # NULL: public sensor, no consent needed
    # personal readings: minute + the longest retention among the permitting records; NULL: public
    sa.Column("retain_until_ns", sa.BigInteger(), nullable=True),
)

access_log = sa.Table(
    "consent_access_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("subject", sa.String(128), nullable=False, index=True),
    sa.Column("recipient", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(64), nullable=False),
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("first_ts_ns", sa.BigInteger(), nullable=False),
    sa.Column("last_ts_ns", sa.BigInteger(), nullable=False),
    sa.Column("at_ns", sa.BigInteger(), nullable=False),
)

TABLES: list[sa.Table] = list(metadata.sorted_tables)


def create_schema(engine: sa.Engine) -> None:
    """Create the consent tables (idempotent)."""
    metadata.create_all(engine)
