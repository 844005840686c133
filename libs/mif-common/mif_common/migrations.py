"""Alembic plumbing shared by every service's `migrations/env.py` and by the run/test tooling."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def run_env(target_metadata: list[MetaData], *, schema: str) -> None:
    """Body of a service's env.py: migrate its schema online, version table inside that schema."""
    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set (alembic_config() does it)"

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'SET search_path TO "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=False,
            compare_type=True,
            include_object=_not_version_table,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(
            url,
            poolclass=pool.NullPool,
            execution_options={"schema_translate_map": {None: schema}},
        )
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, version_table_schema=schema, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())


def _not_version_table(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "table" and name == "alembic_version")


def alembic_config(ini_path: Path, database_url: str) -> Config:
    cfg = Config(str(ini_path))
    cfg.set_main_option("script_location", str(ini_path.parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(ini_path: Path, database_url: str, revision: str = "head") -> None:
    """Run a service's migrations (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(ini_path, database_url), revision)


def downgrade(ini_path: Path, database_url: str, revision: str) -> None:
    """Undo a service's migrations down to `revision` (blocking, as `upgrade`): what a test of a
    migration's backfill does before upgrading again."""
    command.downgrade(alembic_config(ini_path, database_url), revision)
