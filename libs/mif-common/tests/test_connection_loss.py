"""Connections the database server closes under a running service (restart, failover, `pg_terminate_backend`)
answer 503 problem+json with Retry-After, never 500, and the service recovers without a restart.

The app is built by `create_service_app` with its real engine and session dependency (no test overrides),
connected as the auth service's role to the test database; the test kills that role's backends.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from mif_common.app import ServiceParts, create_service_app
from mif_common.config import ServiceSettings
from mif_common.db import DRIVER_ERRORS, Session, driver_error
from mif_common.suite import service
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.polling import eventually

ROLE = service("auth").db_role

probe = APIRouter(prefix="/api/v1/probe")


@probe.get("/session")
async def in_a_transaction(session: Session, pause: float = 0.0, then: str = "query") -> dict[str, int]:
    """A statement, a pause idle in transaction (a kill lands here), then another statement or the commit."""
    first = int(await session.scalar(sa.text("SELECT 1")) or 0)
    if pause:
        await asyncio.sleep(pause)
    second = int(await session.scalar(sa.text("SELECT 2")) or 0) if then == "query" else 0
    return {"sum": first + second}


@probe.get("/slow")
async def slow_statement(session: Session, seconds: float = 5.0) -> dict[str, bool]:
    await session.execute(sa.text("SELECT pg_sleep(:s)"), {"s": seconds})
    return {"ok": True}


@probe.get("/driver")
async def on_the_driver(request: Request, seconds: float = 0.0) -> dict[str, int]:
    """Like interventions' lists: AUTOCOMMIT, the statement on the asyncpg connection itself."""
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            value = await driver.fetchval("SELECT 1 FROM pg_sleep($1)", seconds)
        except DRIVER_ERRORS as error:
            raise await driver_error(connection, "SELECT 1 FROM pg_sleep($1)", error) from error
    return {"value": int(value)}


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "auth"  # its schema and role exist in the test database


@pytest.fixture
async def app(mif_database: TestDatabase, mif_amqp_url: str) -> AsyncIterator[FastAPI]:
    settings = ProbeSettings(
        environment="test",
        database_url=mif_database.url_for("auth"),
        amqp_url=mif_amqp_url,
        background_tasks=False,
        revocation_enabled=False,
        log_json=False,
        db_pool_size=5,
    )
    application = create_service_app(settings, ServiceParts(title="probe", description="probe", routers=[probe]))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: a 500 is an answer to count, not a crash of the test.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as c:
        yield c


@pytest.fixture
async def admin(mif_database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(mif_database.dsn)
    yield connection
    await connection.close()


async def kill(admin: asyncpg.Connection) -> int:
    """Terminate every backend of the app's role in this database; how many were."""
    killed = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = $1",
        ROLE,
    )
    return int(killed)


async def wait_for_backend(admin: asyncpg.Connection, state: str, like: str = "%") -> None:
    async def found() -> int:
        return int(
            await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename = $1"
                " AND state = $2 AND query LIKE $3",
                ROLE,
                state,
                like,
            )
        )

    await eventually(found, what=f"a backend of {ROLE} in state {state!r}", within=5.0, interval=0.01)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body: dict[str, Any] = response.json()
    assert body["status"] == 503 and body["detail"] and body["request_id"]


async def assert_recovered(client: httpx.AsyncClient) -> None:
    """The next request is served normally, without restarting anything."""
    for path in ("/api/v1/probe/session", "/api/v1/probe/driver"):
        response = await client.get(path)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "state", "like"),
    [
        ("/api/v1/probe/slow?seconds=30", "active", "%pg_sleep%"),  # killed during a statement
        ("/api/v1/probe/session?pause=1", "idle in transaction", "%"),  # between two statements
        ("/api/v1/probe/session?pause=1&then=commit", "idle in transaction", "%"),  # before the commit
        ("/api/v1/probe/driver?seconds=30", "active", "%pg_sleep%"),  # on the asyncpg connection itself
    ],
)
async def test_a_connection_killed_under_a_request_is_503_then_recovers(
    client: httpx.AsyncClient, admin: asyncpg.Connection, path: str, state: str, like: str
) -> None:
    await assert_recovered(client)  # warm: the pool holds connections the server is about to close
    request = asyncio.create_task(client.get(path))
    await wait_for_backend(admin, state, like)
    assert await kill(admin) >= 1
    response = await asyncio.wait_for(request, 10)
    assert_unavailable(response)
    await assert_recovered(client)


async def test_pooled_connections_killed_between_requests_are_replaced(
    client: httpx.AsyncClient, admin: asyncpg.Connection
) -> None:
    responses = await asyncio.gather(*(client.get("/api/v1/probe/session?pause=0.05") for _ in range(5)))
    assert {r.status_code for r in responses} == {200}
    assert await kill(admin) >= 1
    await asyncio.sleep(0.1)  # the event loop reads the servers' goodbyes
    responses = await asyncio.gather(*(client.get("/api/v1/probe/session") for _ in range(5)))
    assert {r.status_code for r in responses} == {200}


async def test_backends_killed_during_load_answer_200_or_503_never_500(
    client: httpx.AsyncClient, admin: asyncpg.Connection
) -> None:
    paths = ["/api/v1/probe/session?pause=0.002", "/api/v1/probe/driver", "/api/v1/probe/session?then=commit"]
    statuses: Counter[int] = Counter()
    unavailable_without_retry_after = 0
    done = asyncio.Event()

    async def worker(n: int) -> None:
        nonlocal unavailable_without_retry_after
        for i in range(25):
            response = await client.get(paths[(n + i) % len(paths)])
            statuses[response.status_code] += 1
            if response.status_code == 503 and "retry-after" not in response.headers:
                unavailable_without_retry_after += 1

    async def killer() -> None:
        while not done.is_set():
            await kill(admin)
            await asyncio.sleep(0.01)

    killing = asyncio.create_task(killer())
    try:
        await asyncio.gather(*(worker(n) for n in range(20)))
    finally:
        done.set()
        await killing
    assert sum(statuses.values()) == 500
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0, statuses  # the kills did land
    assert unavailable_without_retry_after == 0
    await asyncio.sleep(0.1)
    await assert_recovered(client)
