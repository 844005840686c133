"""Values unique regardless of case (a serial number, a part reference, a location code): who holds one.

Their unique indexes are on `lower(column)`, so the lookup compares the same way and uses that index.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

M = TypeVar("M")


async def holder_of(
    session: AsyncSession,
    model: type[M],
    column: Any,
    value: str,
    *,
    except_id: int | None = None,
    where: Iterable[sa.ColumnElement[bool]] = (),
) -> M | None:
    """The row of `model` whose `column` equals `value` ignoring case (other than `except_id`: the row
    being updated), among the rows `where` selects."""
    query = sa.select(model).where(sa.func.lower(column) == value.lower(), *where)
    if except_id is not None:
        query = query.where(model.id != except_id)  # type: ignore[attr-defined]
    return await session.scalar(query)
