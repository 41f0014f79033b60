"""Identity schema (SQLAlchemy Core on its own MetaData) and ``create_schema(engine)``.

The service applies the same schema through civitas/migrations/versions/identity_0001_initial.py.

Issuer side: credential offers with pre-authorized codes (stored hashed, single-use, short-lived,
with a tx_code attempt counter), the hashes of used c_nonces until they expire (issuing a
nonce stores nothing), the index of issued credentials (no claim
values: only type, status-list position and validity) and the status lists themselves.
Verifier side: trusted issuers, eligibility rules, presentation requests and their results
(only the disclosed, requested claims and a pseudonym are kept), and citizen sign-in sessions
(a presentation whose pseudonym becomes the subject of a citizen access token).
Timestamps are integer UTC nanoseconds (``*_ns``).
"""

from __future__ import annotations

import sqlalchemy as sa

from identity.sql import Id128

__all__ = [
    "TABLES",
    "citizen_sessions",
    "create_schema",
    "eligibility_rules",
    "issued_credentials",
    "metadata",
    "nonces",
    "offers",
    "presentation_requests",
    "presentation_results",
    "status_lists",
    "trusted_issuers",
]

metadata = sa.MetaData()

offers = sa.Table(
    "identity_offers",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("credential_configuration_id", sa.String(100), nullable=False),
    sa.Column("subject_ref", sa.String(200), nullable=False),
    # The raw claims the issuer will sign; the issuer is the one party allowed to keep them.
    sa.Column("claims_json", sa.Text(), nullable=False),
    sa.Column("pre_auth_code_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("tx_code_hash", sa.String(64), nullable=True),
    sa.Column("tx_code_attempts", sa.Integer(), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
    sa.Column("expires_ns", sa.BigInteger(), nullable=False),
    sa.Column("redeemed_ns", sa.BigInteger(), nullable=True),
    sa.Column("access_expires_ns", sa.BigInteger(), nullable=True),
    sa.Column("credentials_issued", sa.Integer(), nullable=False),
)

nonces = sa.Table(
    "identity_nonces",
    metadata,
    sa.Column("nonce_hash", sa.String(64), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("expires_ns", sa.BigInteger(), nullable=False, index=True),  # expired rows are purged
    sa.Column("used_ns", sa.BigInteger(), nullable=True),
)

status_lists = sa.Table(
    "identity_status_lists",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("bits", sa.Integer(), nullable=False),
    sa.Column("size", sa.Integer(), nullable=False),
    sa.Column("used", sa.Integer(), nullable=False),
    sa.Column("statuses", sa.LargeBinary(), nullable=False),
    sa.Column("updated_ns", sa.BigInteger(), nullable=False),
)

issued_credentials = sa.Table(
    "identity_issued_credentials",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("batch_id", Id128(), nullable=False, index=True),
    sa.Column("offer_id", Id128(), sa.ForeignKey("identity_offers.id"), nullable=True),
    sa.Column("format", sa.String(32), nullable=False),
    sa.Column("vct", sa.String(200), nullable=False),
    sa.Column("status_list_id", sa.Integer(), sa.ForeignKey("identity_status_lists.id"), nullable=False),
    sa.Column("status_idx", sa.Integer(), nullable=False),
    sa.Column("status", sa.SmallInteger(), nullable=False),
    sa.Column("holder_key_thumbprint", sa.String(64), nullable=True),
    sa.Column("issued_ns", sa.BigInteger(), nullable=False),
    sa.Column("expires_ns", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("status_list_id", "status_idx", name="uq_identity_issued_status_slot"),
)

trusted_issuers = sa.Table(
    "identity_trusted_issuers",
    metadata,
    sa.Column("issuer_id", sa.String(200), primary_key=True),
    sa.Column("public_key_json", sa.Text(), nullable=False),
    sa.Column("vct_values_json", sa.Text(), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
    sa.Column("revoked_ns", sa.BigInteger(), nullable=True),
)

eligibility_rules = sa.Table(
    "identity_eligibility_rules",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("expression", sa.Text(), nullable=False),
    sa.Column("vct_values_json", sa.Text(), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
)

presentation_requests = sa.Table(
    "identity_presentation_requests",
    metadata,
    sa.Column("id", Id128(), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("nonce", sa.String(64), nullable=False, unique=True),
    sa.Column("state", sa.String(64), nullable=False, unique=True),
    sa.Column("dcql_json", sa.Text(), nullable=False),
    sa.Column("rule_name", sa.String(64), nullable=True),
    sa.Column("pseudonym_context", sa.String(200), nullable=True),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
    sa.Column("expires_ns", sa.BigInteger(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("completed_ns", sa.BigInteger(), nullable=True),
)

presentation_results = sa.Table(
    "identity_presentation_results",
    metadata,
    sa.Column("request_id", Id128(), sa.ForeignKey("identity_presentation_requests.id"), primary_key=True),
    sa.Column("accepted", sa.Boolean(), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("eligible", sa.Boolean(), nullable=True),
    sa.Column("credential_query_id", sa.String(64), nullable=True),
    sa.Column("issuer_id", sa.String(200), nullable=True),
    sa.Column("vct", sa.String(200), nullable=True),
    sa.Column("format", sa.String(32), nullable=True),
    sa.Column("disclosed_json", sa.Text(), nullable=False),
    sa.Column("pseudonym", sa.String(200), nullable=True),
    sa.Column("status_checked", sa.Boolean(), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
)

citizen_sessions = sa.Table(
    "identity_citizen_sessions",
    metadata,
    sa.Column("request_id", Id128(), sa.ForeignKey("identity_presentation_requests.id"), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("created_ns", sa.BigInteger(), nullable=False),
    sa.Column("expires_ns", sa.BigInteger(), nullable=False, index=True),  # expired rows are purged
    sa.Column("token_issued_ns", sa.BigInteger(), nullable=True),
)

TABLES: list[sa.Table] = [
    offers,
    nonces,
    status_lists,
    issued_credentials,
    trusted_issuers,
    eligibility_rules,
    presentation_requests,
    presentation_results,
    citizen_sessions,
]


def create_schema(engine: sa.Engine) -> None:
    """Create the identity tables (library use; the service runs the Alembic migration)."""
    metadata.create_all(engine)
