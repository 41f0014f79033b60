"""Service tables: OAuth2 clients.

Revision ID: civitas_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "civitas_0001"
down_revision = None
branch_labels = ("civitas",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(2000), nullable=False),
        sa.Column("grant_types", sa.String(200), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ns", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("oauth_clients")
