"""Local replicas of other services' data, fed by events that may arrive out of order."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute


async def upsert_if_newer(
    session: AsyncSession,
    model: type[Any],
    *,
    key: InstrumentedAttribute[Any],
    freshness: InstrumentedAttribute[Any],
    values: dict[str, Any],
) -> bool:
    """Insert or update one replica row unless it already holds later news (by `freshness`).

    Returns False when the incoming snapshot is stale and nothing was written.
    """
    insert = pg_insert(model).values(**values)
    upsert = insert.on_conflict_do_update(
        index_elements=[key],
        set_={k: insert.excluded[k] for k in values if k != key.key},
        where=freshness <= insert.excluded[freshness.key],
    ).returning(key)
    return await session.scalar(upsert) is not None
