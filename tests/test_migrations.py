"""Migrations build exactly the schema the table definitions describe, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from civitas.db import combined_metadata, current_heads, migrate


def _script_heads() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from civitas.db import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return set(ScriptDirectory.from_config(cfg).get_heads())


def test_migrations_match_the_table_definitions(engine: sa.Engine) -> None:
    migrate(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), combined_metadata()
        )
    assert diff == []


def test_migrate_is_idempotent_and_reaches_every_head(engine: sa.Engine) -> None:
    migrate(engine)
    migrate(engine)
    assert current_heads(engine) == _script_heads()
    assert "civitas_0001" in current_heads(engine)
