"""Every service's migrated schema is exactly what its models describe: a model changed without its
migration (or the reverse) fails here, for each service of the suite, not only for the one that had it."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine

from mif_common.events.tables import event_metadata
from mif_common.suite import ServiceInfo, built_services
from mif_common.testing.plugin import TestDatabase


def _metadata(svc: ServiceInfo) -> MetaData:
    models = importlib.import_module(f"{svc.package}.models")
    metadata: MetaData = models.Base.metadata
    return metadata


# Alembic compares an index on an expression with an operator class (assets' trigram indexes) by name only,
# and says so; the name, the table and the index's presence are still checked.
@pytest.mark.filterwarnings("ignore:Expression #1 .* detected to include an operator clause:UserWarning")
@pytest.mark.parametrize("svc", built_services(), ids=lambda s: s.name)
async def test_migrations_match_the_models(mif_database: TestDatabase, svc: ServiceInfo) -> None:
    def diff(sync: Connection) -> list[Any]:
        sync.execute(text(f"SET search_path TO {svc.schema}"))
        context = MigrationContext.configure(
            sync,
            opts={
                "compare_type": True,
                "include_schemas": False,
                "include_object": lambda obj, name, type_, *_: not (type_ == "table" and name == "alembic_version"),
            },
        )
        return list(compare_metadata(context, [_metadata(svc), event_metadata]))  # type: ignore[arg-type]

    engine = create_async_engine(mif_database.url_for(svc.name))
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
