"""Identity: indexes for purging expired rows (used c_nonces, finished or abandoned sign-ins).

Revision ID: identity_0003
"""

from __future__ import annotations

from alembic import op

revision = "identity_0003"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_identity_nonces_expires_ns", "identity_nonces", ["expires_ns"])
    op.create_index("ix_identity_citizen_sessions_expires_ns", "identity_citizen_sessions", ["expires_ns"])


def downgrade() -> None:
    op.drop_index("ix_identity_citizen_sessions_expires_ns", table_name="identity_citizen_sessions")
    op.drop_index("ix_identity_nonces_expires_ns", table_name="identity_nonces")
