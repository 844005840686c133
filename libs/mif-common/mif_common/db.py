"""Engine, sessions and the request session dependency, per service schema.

Models carry no schema name: the engine maps them to the service's schema (`schema_translate_map`),
and the connection's `search_path` points there too so raw SQL and triggers resolve the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

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


def make_engine(database_url: str, *, schema: str, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    """An asyncpg engine whose tables and raw SQL resolve to `schema`."""
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"search_path": schema, "application_name": f"mif-{schema}"}},
        execution_options={"schema_translate_map": {None: schema}},
        **kwargs,
    )


def make_sessionmaker(engine: AsyncEngine, *, source: str) -> async_sessionmaker[AsyncSession]:
    """Sessions that know which service they write events for (`info["source"]`)."""
    return async_sessionmaker(engine, expire_on_commit=False, info={"source": source})


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: the only place that commits; rolls back on any error."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# `scope="function"` commits before the response is sent, so a failed commit is an error answer.
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]
