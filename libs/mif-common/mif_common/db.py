"""Engine, sessions and the request session dependency, per service schema.

Models carry no schema name: the engine maps them to the service's schema (`schema_translate_map`),
and the connection's `search_path` points there too so raw SQL and triggers resolve the same way (sent
at connection start, or, behind PgBouncer, the role's own default set by `mif_common.provision`).

Connections of a process (deploy/k8s/README.md, "Database connections"): the engine's pool, at most
`db_pool_size + db_max_overflow` (requests, consumers, the relay's batches, the AUTOCOMMIT
reads, readiness checks all share it), and beside it the LISTEN connections (`connect_direct`, held by
`mif_common.listen`: the outbox relay's, and notifications' live stream), which always go straight to
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, Request
from pydantic_settings import BaseSettings
from sqlalchemy import MetaData, event, exc
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from mif_common.config import ServiceSettings
from mif_common.errors import is_connection_lost

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

logger = logging.getLogger(__name__)

# One naming convention for constraints and indexes so migrations get stable names.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


# Pooled connections are replaced after this long, so one dropped silently by the network (a NAT or
# firewall forgetting an idle flow: no FIN ever arrives) is not kept for ever.
POOL_RECYCLE_SECONDS = 1800


def make_engine(
    database_url: str | URL,
    *,
    schema: str,
    pool_size: int = 4,
    max_overflow: int | None = None,
    pgbouncer: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """An asyncpg engine whose tables and raw SQL resolve to `schema`, holding at most
    `pool_size + max_overflow` connections (`max_overflow` None: as many as `pool_size`, for tools and
    tests; services pass their settings through `service_engine`).

    `pgbouncer`: the URL goes through PgBouncer in transaction mode, where consecutive transactions of one
    client connection may run on different server connections. So no statement outlives its exchange on
    the client's side: asyncpg's statement cache and SQLAlchemy's prepared-statement cache are off, and the
    statements SQLAlchemy still prepares are unnamed (`_unnamed_statement`); `search_path` is not sent at
    connection start (PgBouncer refuses unknown startup parameters, and would not carry it to the server
    connections): the role's default, set at provisioning, gives it.

    Connections are checked at checkout without a round trip (`_discard_closed`) instead of with
    SQLAlchemy's `pool_pre_ping`, which sends `BEGIN; SELECT; ROLLBACK` (three round trips, ~0.5 ms of
    CPU in this process and some in PostgreSQL) before every request's first statement.
    """
    server_settings = {"application_name": f"mif-{schema}"}
    connect_args: dict[str, Any] = {"server_settings": server_settings}
    if pgbouncer:
        connect_args |= {
            "statement_cache_size": 0,  # asyncpg's own
            "prepared_statement_cache_size": 0,  # SQLAlchemy's (its asyncpg adapter)
            "prepared_statement_name_func": _unnamed_statement,
        }
    else:
        server_settings["search_path"] = schema
    engine = create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_recycle=POOL_RECYCLE_SECONDS,
        connect_args=connect_args,
        execution_options={"schema_translate_map": {None: schema}},
        **kwargs,
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    event.listen(engine.sync_engine, "handle_error", _invalidate_lost)
    return engine


def service_engine(settings: ServiceSettings) -> AsyncEngine:
    """The engine of a service process, sized and configured by its settings."""
    return make_engine(
        settings.database_url,
        schema=settings.db_schema,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pgbouncer=settings.db_pgbouncer,
    )


def _unnamed_statement() -> str:
    """The name of every statement SQLAlchemy prepares behind PgBouncer: none. asyncpg sends an unnamed
    statement's Parse/Describe and its Bind/Execute with no Sync between them, so one server connection runs
    both even outside a transaction (interventions' AUTOCOMMIT reads); a named one could be prepared on one
    server connection and executed on another (only PgBouncer >= 1.21 with `max_prepared_statements`
    re-prepares it)."""
    return ""


# Options of a URL's query string that SQLAlchemy's asyncpg dialect reads itself, not asyncpg.connect.
_DIALECT_ONLY_OPTIONS = frozenset({"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"})


async def connect_direct(url: str | URL, *, application_name: str) -> asyncpg.Connection:
    """A connection of its own, outside any pool, for LISTEN: to the service's direct URL
    (`direct_database_url`, straight to PostgreSQL: LISTEN/NOTIFY needs a session, which PgBouncer's
    transaction pooling does not give). The caller closes it (`close_direct`)."""
    parsed = make_url(url)
    options: dict[str, Any] = parsed.translate_connect_args(username="user")
    options |= {k: v for k, v in parsed.query.items() if k not in _DIALECT_ONLY_OPTIONS}
    return await asyncpg.connect(**options, server_settings={"application_name": application_name})


async def close_direct(connection: asyncpg.Connection) -> None:
    """Close a `connect_direct` connection; a lost one (or a cancelled close) is dropped at once."""
    try:
        await connection.close(timeout=2)
    except asyncio.CancelledError:
        connection.terminate()
        raise
    except Exception as exc:
        logger.debug("closing a direct connection failed: %r", exc)
        connection.terminate()


def _invalidate_lost(context: ExceptionContext) -> None:
    """Treat a connection the server said it is closing as gone now, so it never goes back to the pool.

    SQLAlchemy asks asyncpg whether the connection is closed; right after the server's "terminating
    connection" (57P01) asyncpg may not have seen the socket close yet and says no: the connection would
    be handed to the next request, whose statement then fails ("another operation is in progress").
    Only this connection is invalidated: the others are checked at their checkout (`_discard_closed`).
    """
    if not context.is_disconnect and is_connection_lost(context.original_exception):
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = False


def _discard_closed(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
    """Replace a pooled connection the server has closed (restart, failover, `pg_terminate_backend`,
    idle timeout) before a request uses it: the pool retries the checkout with a fresh connection.

    asyncpg reads the server's goodbye (and the socket's EOF) as soon as the event loop runs, so a
    connection closed while it sat in the pool is known closed here, at no cost. What this cannot see,
    a pre-ping would not save either: a connection dropped without a FIN (a ping would wait for TCP's
    timeout just as the query does; `pool_recycle` bounds their age), and one closed in the instant
    between checkout and the first statement (a ping narrows that window, it cannot close it; that
    request fails, and the connection, now known closed, is replaced at its next checkout).
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


# What a statement run on the asyncpg connection itself may raise (`except DRIVER_ERRORS`, then `driver_error`).
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)


async def driver_error(connection: AsyncConnection, statement: str, error: Exception) -> exc.DBAPIError:
    """An error of a statement run on `connection`'s asyncpg connection itself, as SQLAlchemy's
    `DBAPIError` carrying it (so the app answers it like any other). A connection the server closed is
    invalidated at once, so that it never goes back to the pool (see `_invalidate_lost`, which does the
    same for statements run through SQLAlchemy)."""
    lost = is_connection_lost(error)
    if lost:
        try:
            await connection.invalidate()
        except Exception as closing:  # it is gone either way
            logger.debug("invalidating a lost connection failed: %r", closing)
    return exc.DBAPIError(statement, None, error, connection_invalidated=lost)


def make_sessionmaker(
    engine: AsyncEngine, *, source: str, settings: BaseSettings | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions that know which service they write events for (`info["source"]`) and, when given, its
    settings (`session_settings`)."""
    return async_sessionmaker(engine, expire_on_commit=False, info={"source": source, "settings": settings})


def session_settings(session: AsyncSession, kind: type[SettingsT]) -> SettingsT:
    """The settings of the service `session` works for: what an event handler reads a delay or a rule
    from, so that every service's handlers are one static `HANDLERS` mapping."""
    settings = session.info.get("settings")
    if not isinstance(settings, kind):
        raise RuntimeError(f"this session carries no {kind.__name__} (make_sessionmaker(..., settings=...))")
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: the only place that commits; rolls back on any error.

    A rollback that fails too (the server closed the connection: there is nothing left to roll back)
    must not replace the error being answered: the original error is the one raised."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await rollback_quietly(session)
            raise


async def rollback_quietly(session: AsyncSession) -> None:
    """Roll back, logging instead of raising when the rollback itself fails (a lost connection)."""
    try:
        await session.rollback()
    except Exception as exc:
        logger.warning("rollback failed after an error (the connection is likely gone): %r", exc)


# `scope="function"` commits before the response is sent, so a failed commit is an error answer.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


@asynccontextmanager
async def autocommit_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection outside any transaction (AUTOCOMMIT), for reads: a statement needs none on
    its own, and the hot paths save the BEGIN and COMMIT round trips."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for reads on an `autocommit_connection`: each statement on its own, nothing to commit
    (a list is one statement, its page and total together). Lists that skip the session and run on the
    asyncpg connection use `mif_common.listing.ReadConnections`, on the same kind of connection."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with autocommit_connection(request.app.state.engine) as connection, maker(bind=connection) as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(get_read_session)]
