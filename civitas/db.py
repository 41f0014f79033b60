"""The service's engine and schema: one engine, every domain's tables, Alembic migrations."""

from __future__ import annotations

import importlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from civitas.settings import Settings
from identity.sql import open_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Each domain package that owns tables exposes them as `<package>.tables.TABLES`.
DOMAIN_TABLE_MODULES = ("identity.tables", "ledger.tables", "consent.tables", "analytics.tables")


def create_engine(settings: Settings) -> sa.Engine:
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_engine(settings.resolved_database_url)


def all_tables() -> list[sa.Table]:
    from civitas.tables import SERVICE_TABLES

    tables: list[sa.Table] = list(SERVICE_TABLES)
    for name in DOMAIN_TABLE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        tables.extend(module.TABLES)
    return tables


def combined_metadata() -> sa.MetaData:
    """Every table of the service in one MetaData, for schema comparison against migrations."""
    metadata = sa.MetaData()
    for table in all_tables():
        table.to_metadata(metadata)
    return metadata


def alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: sa.Engine) -> None:
    """Apply every domain's migrations (each domain is its own Alembic branch)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "heads")


def current_heads(engine: sa.Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())
