from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import InProcessAssets, assets_in_process
from mif_auth.config import AuthSettings
from mif_auth.handlers import HANDLERS
from mif_auth.main import create_app
from mif_auth.schemas import UserCreate
from mif_auth.testing import PASSWORD, MakeUser, known_client
from mif_auth.users import create_user
from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import ServiceUnderTest, TestDatabase


@pytest.fixture(scope="session")
def mif_service(tmp_path_factory: pytest.TempPathFactory) -> ServiceUnderTest:
    return ServiceUnderTest(
        "auth",
        AuthSettings,
        create_app,
        handlers=HANDLERS,
        settings_overrides={
            "argon2_memory_kib": 1024,  # cheap hashing (production refuses less than OWASP)
            "argon2_time_cost": 1,
            "key_dir": tmp_path_factory.mktemp("auth-keys"),
            "login_max_failures_per_account": 3,  # per (account, address)
            "login_max_failures_per_ip": 6,
            # Delays after 6 failures on an account from everywhere: 1, 2, 4, 8, 8... s.
            "login_delay_after_failures": 6,
            "login_delay_max_seconds": 8,
            "login_alert_after_failures": 4,
        },
    )


@pytest.fixture
def make_user(db_session: AsyncSession, client: httpx.AsyncClient, app: Any) -> MakeUser:
    """Create a user in the database and sign it in through the API; returns ids and headers."""
    counter = {"n": 0}

    async def make(role: str = "technicien", *, client_id: int | None = None, **fields: Any) -> dict[str, Any]:
        counter["n"] += 1
        n = counter["n"]
        data = {
            "username": f"{role}{n}",
            "full_name": f"{role.title()} {n}",
            "email": f"{role}{n}@example.ma",
            "role": role,
            "password": PASSWORD,
            "client_id": client_id if client_id is not None else (42 if role == "client" else None),
            **fields,
        }
        if data["client_id"] is not None:  # an organisation auth already knows (see known_client)
            await known_client(db_session, data["client_id"])
        user = await create_user(db_session, data=UserCreate(**data), settings=app.state.settings)
        await db_session.commit()
        response = await client.post("/api/v1/auth/login", data={"username": data["username"], "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens = response.json()
        return {
            "id": user.id,
            "username": data["username"],
            "email": data["email"],
            "tokens": tokens,
            "headers": {"Authorization": f"Bearer {tokens['access_token']}"},
        }

    return make


@pytest.fixture
async def assets(
    app: FastAPI, mif_database: TestDatabase, mif_amqp_url: str, mif_keys: TestKeys
) -> AsyncIterator[InProcessAssets]:
    """The real assets service, in process and rolled back, answering auth's questions about client
    organisations (it trusts the test keys and auth's own)."""
    async with assets_in_process(
        database_url=mif_database.url_for("assets"), amqp_url=mif_amqp_url, jwks=[mif_keys.jwks, app.state.keyring.jwks]
    ) as running:
        own_http, to_assets = app.state.http, running.client()
        app.state.http = to_assets
        try:
            yield running
        finally:
            if app.state.http is not to_assets:  # a test swapped it again
                await app.state.http.aclose()
            await to_assets.aclose()
            app.state.http = own_http
