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
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import ReturningInsert

from mif_common.statements import Statement

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

    async def upsert_seeing_previous(
        self, session: AsyncSession, values: Mapping[str, Any], *, previous: tuple[str, ...]
    ) -> tuple[bool, asyncpg.Record | None]:
        """`upsert`, also answering what the row held before (its `previous` columns; None when there was
        no row), in one round trip: the row is locked (`FOR UPDATE`) before it is read and written, so a
        concurrent writer of the same row cannot slip in between. (Whether it was written, the previous
        values.)"""
        columns = tuple(values)
        index = (*columns, "|", *previous)
        statement = self._statements.get(index)
        if statement is None:
            statement = self._statements[index] = Statement(lambda: self._build_seeing(columns, previous), columns)
        [row] = await statement.fetch(await session.connection(), values)
        return bool(row["written"]), (row if row["found"] else None)

    def _build_seeing(self, columns: tuple[str, ...], previous: tuple[str, ...]) -> sa.ClauseElement:
        # WITH previous AS MATERIALIZED (SELECT ... FOR UPDATE), written AS (INSERT ... SELECT <values>
        # FROM one LEFT JOIN previous ... ON CONFLICT DO UPDATE ...) SELECT <written?>, <previous>: the
        # insert's source reads `previous`, so the row is locked and read before it is written, and the
        # outer select reads the same materialised rows.
        table = self.table
        locked = (
            sa.select(sa.literal(True).label("found"), *(table.c[name] for name in previous))
            .where(table.c[self.key] == sa.bindparam(self.key, type_=table.c[self.key].type))
            .with_for_update()
            .cte("previous")
            .prefix_with("MATERIALIZED")
        )
        source = sa.select(*(sa.bindparam(name, type_=table.c[name].type) for name in columns)).select_from(
            sa.select(sa.literal(1).label("one")).subquery("source").outerjoin(locked, sa.true())
        )
        written = self._upsert(pg_insert(table).from_select(list(columns), source), columns).cte("written")
        count = sa.select(sa.func.count()).select_from(written).scalar_subquery()
        return sa.select(
            (count > 0).label("written"),
            sa.func.coalesce(locked.c.found, False).label("found"),
            *(locked.c[name] for name in previous),
        ).select_from(sa.select(sa.literal(1).label("one")).subquery("answer").outerjoin(locked, sa.true()))

    def _build(self, columns: tuple[str, ...]) -> sa.ClauseElement:
        table = self.table
        insert = pg_insert(table).values({name: sa.bindparam(name, type_=table.c[name].type) for name in columns})
        return self._upsert(insert, columns)

    def _upsert(self, insert: Insert, columns: tuple[str, ...]) -> ReturningInsert[Any]:
        table = self.table
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
