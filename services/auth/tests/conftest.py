from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.config import AuthSettings
from mif_auth.main import create_app
from mif_auth.schemas import UserCreate
from mif_auth.service import create_user
from mif_auth.testing import PASSWORD, MakeUser
from mif_common.testing.plugin import ServiceUnderTest


@pytest.fixture(scope="session")
def mif_service(tmp_path_factory: pytest.TempPathFactory) -> ServiceUnderTest:
    return ServiceUnderTest(
        "auth",
        AuthSettings,
        create_app,
        settings_overrides={
            "bcrypt_rounds": 4,
            "key_dir": tmp_path_factory.mktemp("auth-keys"),
            "login_max_failures_per_account": 3,
            "login_max_failures_per_ip": 6,
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
