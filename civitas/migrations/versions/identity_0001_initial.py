"""Identity tables: offers, nonces, status lists, issued credentials, trusted issuers, eligibility
rules, presentation requests and results.

Revision ID: identity_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from identity.sql import Id128

revision = "identity_0001"
down_revision = None
branch_labels = ("identity",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_offers",
        sa.Column("id", Id128(), primary_key=True),
        sa.Column("credential_configuration_id", sa.String(100), nullable=False),
        sa.Column("subject_ref", sa.String(200), nullable=False),
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
    op.create_table(
        "identity_nonces",
        sa.Column("nonce_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("expires_ns", sa.BigInteger(), nullable=False),
        sa.Column("used_ns", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "identity_status_lists",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("bits", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("statuses", sa.LargeBinary(), nullable=False),
        sa.Column("updated_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "identity_issued_credentials",
        sa.Column("id", Id128(), primary_key=True),
        sa.Column("batch_id", Id128(), nullable=False),
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
    op.create_index("ix_identity_issued_credentials_batch_id", "identity_issued_credentials", ["batch_id"])
    op.create_table(
        "identity_trusted_issuers",
        sa.Column("issuer_id", sa.String(200), primary_key=True),
        sa.Column("public_key_json", sa.Text(), nullable=False),
        sa.Column("vct_values_json", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ns", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "identity_eligibility_rules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expression", sa.Text(), nullable=False),
        sa.Column("vct_values_json", sa.Text(), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "identity_presentation_requests",
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
    op.create_table(
        "identity_presentation_results",
        sa.Column(
            "request_id", Id128(), sa.ForeignKey("identity_presentation_requests.id"), primary_key=True
        ),
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


def downgrade() -> None:
    op.drop_table("identity_presentation_results")
    op.drop_table("identity_presentation_requests")
    op.drop_table("identity_eligibility_rules")
    op.drop_table("identity_trusted_issuers")
    op.drop_index("ix_identity_issued_credentials_batch_id", table_name="identity_issued_credentials")
    op.drop_table("identity_issued_credentials")
    op.drop_table("identity_status_lists")
    op.drop_table("identity_nonces")
    op.drop_table("identity_offers")
