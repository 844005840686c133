"""The service's own read paths (the AUTOCOMMIT read session, lists on the asyncpg connection itself) and its
request session, with the database terminating the service's connections while requests run: 200 or 503
with Retry-After, never 500, and served again right after, without a restart.

The app here is the real one with its own engine (the `app` fixture's would share the test's transaction)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from mif_common.auth.tokens import StaticKeys, TokenVerifier
from mif_common.config import ServiceSettings
from mif_common.suite import service
from mif_common.testing.keys import TEST_AUDIENCE, TEST_ISSUER, TestKeys
from mif_common.testing.plugin import TestDatabase
from mif_interventions.main import create_app

ROLE = service("interventions").db_role
Headers = dict[str, str]


@pytest.fixture
async def live(mif_settings: ServiceSettings, mif_keys: TestKeys) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(mif_settings.model_copy(update={"db_pool_size": 4}))
    async with app.router.lifespan_context(app):
        app.state.token_verifier = TokenVerifier(
            StaticKeys(mif_keys.jwks), issuer=TEST_ISSUER, audience=TEST_AUDIENCE, algorithms=["EdDSA", "RS256"]
        )
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            yield client


@pytest.fixture
async def admin_connection(mif_database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(mif_database.dsn)
    yield connection
    await connection.close()


async def kill(admin: asyncpg.Connection) -> None:
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = $1",
        ROLE,
    )


PATHS = [
    "/api/v1/interventions?statut=ouverte",  # a list: on the asyncpg connection, AUTOCOMMIT
    "/api/v1/dashboard/kpis",  # the AUTOCOMMIT read session
    "/api/v1/dashboard/stats",
    "/api/v1/interventions/987654321",  # read session, then a 404
]


async def test_connections_killed_under_load_answer_200_or_503_then_recover(
    live: httpx.AsyncClient, admin_connection: asyncpg.Connection, auth_headers: Callable[..., Headers]
) -> None:
    headers = auth_headers("responsable", user_id=1)
    statuses: Counter[int] = Counter()
    missing_retry_after = 0
    done = asyncio.Event()

    async def worker(n: int) -> None:
        nonlocal missing_retry_after
        for i in range(20):
            response = await live.get(PATHS[(n + i) % len(PATHS)], headers=headers)
            statuses[response.status_code] += 1
            if response.status_code == 503 and "retry-after" not in response.headers:
                missing_retry_after += 1

    async def killer() -> None:
        while not done.is_set():
            await kill(admin_connection)
            await asyncio.sleep(0.01)

    killing = asyncio.create_task(killer())
    try:
        await asyncio.gather(*(worker(n) for n in range(12)))
    finally:
        done.set()
        await killing
    assert set(statuses) <= {200, 404, 503}, statuses
    assert statuses[503] > 0, statuses
    assert missing_retry_after == 0
    await asyncio.sleep(0.1)
    for path in PATHS[:3]:
        response = await live.get(path, headers=headers)
        assert response.status_code == 200, response.text
