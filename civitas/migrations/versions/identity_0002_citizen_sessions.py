"""Identity: citizen sign-in sessions (presentation -> pseudonymous access token).

Revision ID: identity_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from identity.sql import Id128

revision = "identity_0002"
down_revision = "identity_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_citizen_sessions",
        sa.Column(
            "request_id", Id128(), sa.ForeignKey("identity_presentation_requests.id"), primary_key=True
        ),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("expires_ns", sa.BigInteger(), nullable=False),
        sa.Column("token_issued_ns", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("identity_citizen_sessions")
