"""Statements of fixed shape (or of a few shapes) run on the asyncpg connection under a SQLAlchemy
connection or session.

The hot paths (lists, replica upserts, the inbox claim, the outbox insert) build their statement once,
compile it once for the dialect, and run its SQL text as asyncpg's prepared statement: building a select
and letting SQLAlchemy find it in its compiled cache costs more CPU than PostgreSQL spends running it.
Errors come out as from any other statement, and a statement run this way stays inside the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

from mif_common.db import DRIVER_ERRORS, driver_error

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class CompiledSql:
    """A statement's SQL text for asyncpg (`$1`, `$2`, ...) and what goes in its parameters, in order:
    a request's value (by name, one of `parameters`) or a constant the statement carries (`sa.case`
    values of a sort, for instance)."""

    text: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]

    @classmethod
    def of(cls, statement: sa.ClauseElement, dialect: Dialect, parameters: Iterable[str]) -> CompiledSql:
        named = frozenset(parameters)
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        names = tuple(compiled.positiontup or ())
        constants = {}
        for name in names:
            if name in named:
                continue
            bind = compiled.binds[name]
            if bind.required or bind.expanding or bind.callable is not None:
                raise AssertionError(f"the list statement's parameter {name} is neither named nor a constant")
            constants[name] = bind.effective_value
        return cls(str(compiled), names, constants)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        constants = self.constants
        return [constants[name] if name in constants else values[name] for name in self.names]


async def fetch(connection: AsyncConnection, sql: CompiledSql, values: Mapping[str, Any]) -> list[asyncpg.Record]:
    """Run on the asyncpg connection; its errors come out as SQLAlchemy's `DBAPIError` carrying them, as
    from any other statement, so the app answers alike (a database shutting down or a connection closed
    by the server is a 503, and that connection is never reused: `mif_common.db.driver_error`)."""
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await _begin_if_pending(raw.dbapi_connection)
    try:
        records: list[asyncpg.Record] = await driver.fetch(sql.text, *sql.args(values))
    except DRIVER_ERRORS as error:
        raise await driver_error(connection, sql.text, error) from error
    return records


async def _begin_if_pending(adapted: Any) -> None:
    """SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement it runs; a statement run
    on the driver first would run outside the session's transaction (its writes committed at once, kept
    on a rollback). So the adapter's BEGIN is sent now if it has not been (nothing for an AUTOCOMMIT
    connection: the adapter knows to skip it). These are the adapter's private names (SQLAlchemy is pinned
    in uv.lock); should they change, test_events_reliability's rolled-back-event test fails."""
    if getattr(adapted, "_transaction", False) is None:
        await adapted._start_transaction()


class Statement:
    """A statement of fixed shape (`build()`, its values named by `parameters`), compiled once for the
    dialect of the first connection that runs it, then run on the asyncpg connection (`fetch`)."""

    def __init__(self, build: Callable[[], sa.ClauseElement], parameters: Iterable[str]) -> None:
        self._build = build
        self._parameters = frozenset(parameters)
        self._compiled: CompiledSql | None = None

    async def fetch(self, connection: AsyncConnection, values: Mapping[str, Any]) -> list[asyncpg.Record]:
        if self._compiled is None:
            self._compiled = CompiledSql.of(self._build(), connection.dialect, self._parameters)
        return await fetch(connection, self._compiled, values)


class Shapes(Generic[K]):
    """Statements whose shape depends on a key (which filters a question sets, its grouping, ...): each
    shape is built (`build(key)`) and compiled once, then run on the asyncpg connection like `Statement`.
    The keys must be few (a combination of flags), as every shape stays compiled."""

    def __init__(self, build: Callable[[K], sa.ClauseElement], parameters: Iterable[str]) -> None:
        self._build = build
        self._parameters = frozenset(parameters)
        self._compiled: dict[K, CompiledSql] = {}

    async def fetch(self, connection: AsyncConnection, shape: K, values: Mapping[str, Any]) -> list[asyncpg.Record]:
        compiled = self._compiled.get(shape)
        if compiled is None:
            compiled = self._compiled[shape] = CompiledSql.of(self._build(shape), connection.dialect, self._parameters)
        return await fetch(connection, compiled, values)
