"""The identity migration builds exactly identity.tables, on both databases."""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations

from identity import tables

MIGRATION = importlib.import_module("civitas.migrations.versions.identity_0001_initial")
MIGRATION_2 = importlib.import_module("civitas.migrations.versions.identity_0002_citizen_sessions")
MIGRATION_3 = importlib.import_module("civitas.migrations.versions.identity_0003_expiry_indexes")


def test_identity_migration_matches_tables(engine: sa.Engine) -> None:
    assert MIGRATION.revision == "identity_0001" and MIGRATION.down_revision is None
    assert MIGRATION.branch_labels == ("identity",)
    assert MIGRATION_2.down_revision == "identity_0001"
    assert MIGRATION_3.down_revision == "identity_0002"
    with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        MIGRATION.upgrade()
        MIGRATION_2.upgrade()
        MIGRATION_3.upgrade()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, parent: (
                    type_ != "table" or str(name).startswith("identity_")
                ),
            },
        )
        diff = compare_metadata(ctx, tables.metadata)
    assert diff == []
    with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        MIGRATION_3.downgrade()
        MIGRATION_2.downgrade()
        MIGRATION.downgrade()
    assert not [n for n in sa.inspect(engine).get_table_names() if n.startswith("identity_")]


def test_create_schema_for_library_use(engine: sa.Engine) -> None:
    tables.create_schema(engine)
    names = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in tables.TABLES} <= names
