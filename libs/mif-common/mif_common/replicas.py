"""Local replicas of other services' data, fed by events that may arrive out of order.

Every replica row is written by one statement: insert the snapshot, or update the row with it unless the
row already holds later news (`INSERT ... ON CONFLICT DO UPDATE ... WHERE <newer>`). Consumers run it for
every event they receive, so it is compiled once per replica and set of columns and run as a prepared
statement on the asyncpg connection of the handler's session (inside its transaction): building the
statement and letting SQLAlchemy find it in its cache cost more CPU than PostgreSQL spends running it
(bench/README.md, workflow_throughput.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from mif_common.listing import Statement

# (the replica's table, the snapshot's values as `insert.excluded`) -> an SQL expression
Rule = Callable[[sa.Table, Any], sa.ColumnElement[Any]]


def not_older(column: str) -> Rule:
    """The usual freshness rule: the snapshot is at least as recent as the row (by `column`)."""
    return lambda table, excluded: table.c[column] <= excluded[column]


class Replica:
    """How one replica table takes a snapshot.

    `key`: the owner's id (the conflict target); `newer`: when a snapshot replaces the row (None: the row
    is always written, its `merge` rules deciding column by column); `merge`: how some columns combine the
    row's value and the snapshot's instead of taking the snapshot's (a first-seen time kept, say);
    `returning`: the columns `upsert` answers besides the key.
    """

    def __init__(
        self,
        model: type[Any],
        *,
        key: str,
        newer: Rule | None,
        merge: Mapping[str, Rule] | None = None,
        returning: Sequence[str] = (),
    ) -> None:
        self.table: sa.Table = model.__table__
        self.key = key
        self.newer = newer
        self.merge = dict(merge or {})
        self.returning = (key, *returning)
        self._statements: dict[tuple[str, ...], Statement] = {}

    async def upsert(self, session: AsyncSession, values: Mapping[str, Any]) -> asyncpg.Record | None:
        """Write the snapshot `values` (column -> value, the key included); the row as written (the
        `returning` columns), or None when the row held later news and nothing was written."""
        columns = tuple(values)
        statement = self._statements.get(columns)
        if statement is None:
            statement = self._statements[columns] = Statement(lambda: self._build(columns), columns)
        rows = await statement.fetch(await session.connection(), values)
        return rows[0] if rows else None

    def _build(self, columns: tuple[str, ...]) -> sa.ClauseElement:
        table = self.table
        insert = pg_insert(table).values({name: sa.bindparam(name, type_=table.c[name].type) for name in columns})
        excluded = insert.excluded
        updated: dict[str, sa.ColumnElement[Any]] = {name: excluded[name] for name in columns if name != self.key}
        updated.update({name: rule(table, excluded) for name, rule in self.merge.items()})
        return insert.on_conflict_do_update(
            index_elements=[table.c[self.key]],
            set_=updated,
            where=self.newer(table, excluded) if self.newer is not None else None,
        ).returning(*(table.c[name] for name in self.returning))


_REPLICAS: dict[tuple[type[Any], str, str], Replica] = {}


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
    index = (model, key.key, freshness.key)
    replica = _REPLICAS.get(index)
    if replica is None:
        replica = _REPLICAS[index] = Replica(model, key=key.key, newer=not_older(freshness.key))
    return await replica.upsert(session, values) is not None
