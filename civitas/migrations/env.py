"""Alembic environment: runs on the connection `civitas.db.migrate` hands over."""

from __future__ import annotations

from alembic import context

from civitas.db import combined_metadata

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=combined_metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
