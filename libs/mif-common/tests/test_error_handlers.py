"""Database failures a client can cause by racing another client answer problem+json, never 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mif_common.errors import install_error_handlers
from mif_common.testing.infra import Infra


@pytest.fixture
async def engine(mif_infra: Infra) -> AsyncIterator[AsyncEngine]:
    url = mif_infra.admin_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{sqlstate}")
    async def raise_sqlstate(sqlstate: str) -> None:
        # A real error from PostgreSQL with that SQLSTATE, as a deadlock victim would get it.
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = '{sqlstate}'; END $$"))

    @app.get("/unreachable")
    async def unreachable() -> None:
        closed = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:9/postgres")
        try:
            async with closed.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        finally:
            await closed.dispose()

    @app.get("/pool-exhausted")
    async def pool_exhausted() -> None:
        # A pool of one: the second connection waits for the first, held past the wait.
        async with engine.connect(), engine.connect():
            pass

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("sqlstate", ["40P01", "40001", "55P03"])
async def test_collisions_are_503_with_retry_after(client: httpx.AsyncClient, sqlstate: str) -> None:
    response = await client.get(f"/raise/{sqlstate}")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("/concurrent-update")
    assert "send the request again" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/raise/53300", "/raise/57P03", "/raise/08006", "/unreachable"])
async def test_an_unavailable_database_is_503(client: httpx.AsyncClient, path: str) -> None:
    """Too many connections, a server shutting down, a lost or refused connection: not the client's fault,
    and not a bug either; the answer says to come back."""
    response = await client.get(path)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"].endswith("/database-unavailable")


async def test_a_pool_with_no_free_connection_is_503_busy(client: httpx.AsyncClient) -> None:
    """A flood can keep every pooled connection busy past the wait (seen with backends being killed under
    load): overload, answered with when to come back, never a 500."""
    response = await client.get("/pool-exhausted")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"].endswith("/service-busy")


async def test_other_database_errors_stay_500_without_details(client: httpx.AsyncClient) -> None:
    response = await client.get("/raise/XX000")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "boom" not in response.text
