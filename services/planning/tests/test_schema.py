"""The migrated schema is exactly what the models describe (no drift between migrations and code)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from mif_common.events.tables import event_metadata
from mif_planning.models import Base


async def test_migrations_match_the_models(service_engine: AsyncEngine) -> None:
    def diff(sync: Connection) -> list[Any]:
        sync.execute(text("SET search_path TO planning"))
        context = MigrationContext.configure(
            sync,
            opts={
                "compare_type": True,
                "include_schemas": False,
                "include_object": lambda obj, name, type_, *_: not (type_ == "table" and name == "alembic_version"),
            },
        )
        return list(compare_metadata(context, [Base.metadata, event_metadata]))  # type: ignore[arg-type]

    async with service_engine.connect() as conn:
        assert await conn.run_sync(diff) == []
