"""Sign-in, token shape, refresh rotation and reuse detection, logout, JWKS."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from jwt import PyJWK
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import PASSWORD, MakeUser


async def test_login_form_by_username_and_by_email_multipart(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("responsable")
    by_name = await client.post("/api/v1/auth/login", data={"username": user["username"], "password": PASSWORD})
    by_mail = await client.post(
        "/api/v1/auth/login", files={"username": (None, user["email"].upper()), "password": (None, PASSWORD)}
    )
    by_token = await client.post("/api/v1/auth/token", data={"email": user["email"], "password": PASSWORD})
    for response in (by_name, by_mail, by_token):
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "token_type", "refresh_token", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        assert response.headers["cache-control"] == "no-store"


async def test_access_token_is_asymmetric_and_verifies_with_published_jwks(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("client", client_id=7)
    token = user["tokens"]["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    jwks = (await client.get("/api/v1/auth/.well-known/jwks.json")).json()
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    assert "d" not in key  # never the private part
    claims = jwt.decode(token, PyJWK(key).key, algorithms=["EdDSA"], audience="mif-api", issuer="mif-auth")
    assert claims["sub"] == str(user["id"])
    assert claims["role"] == "client"
    assert claims["client_id"] == 7
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    me = await client.get("/api/v1/auth/me", headers=user["headers"])
    assert me.status_code == 200
    assert {"id", "username", "email", "full_name", "role", "is_active"} <= set(me.json())


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"username": "nobody", "password": PASSWORD}, 401),
        ({"username": "<user>", "password": "wrong"}, 401),
        ({"username": "<user>"}, 422),
        ({}, 422),
    ],
)
async def test_bad_credentials_are_refused(
    client: httpx.AsyncClient, make_user: MakeUser, fields: dict[str, str], status: int
) -> None:
    user = await make_user()
    data = {k: (user["username"] if v == "<user>" else v) for k, v in fields.items()}
    response = await client.post("/api/v1/auth/login", data=data)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "access_token" not in response.text


async def test_login_needs_a_form_or_json_body(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/login", content=b"username=a", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    response = await client.post("/api/v1/auth/login", content=b"{", headers={"content-type": "application/json"})
    assert response.status_code == 400


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    first = user["tokens"]["refresh_token"]
    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    # Replaying the rotated token is a theft signal: refused, and the live one dies with it.
    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert replay.status_code == 401
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": second})
    assert after.status_code == 401


async def test_logout_ends_the_session(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    refresh = user["tokens"]["refresh_token"]
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": refresh})).status_code == 204
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})).status_code == 401


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    response = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {user['tokens']['refresh_token']}"}
    )
    assert response.status_code == 401


async def test_refresh_tokens_are_stored_hashed(db_session: AsyncSession, make_user: MakeUser) -> None:
    user = await make_user()
    raw = user["tokens"]["refresh_token"]
    stored = (await db_session.execute(text("SELECT token_hash FROM refresh_token"))).scalars().all()
    assert raw not in stored
    assert all(len(h) == 64 for h in stored)


async def test_brute_force_locks_the_account_from_that_address_with_retry_after(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    for _ in range(3):
        bad = await client.post("/api/v1/auth/login", data={"username": user["username"], "password": "nope"})
        assert bad.status_code == 401
    # Even the right password is refused from this address while locked (test_sign_in_throttling.py: other
    # addresses are not).
    locked = await client.post("/api/v1/auth/login", data={"username": user["username"], "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "try again" in locked.json()["detail"]


async def test_brute_force_per_ip_across_accounts_survives_a_restart(
    client: httpx.AsyncClient, app: Any, make_user: MakeUser, mif_service: Any, mif_settings: Any
) -> None:
    user = await make_user()
    for n in range(6):
        await client.post("/api/v1/auth/login", data={"username": f"ghost{n}", "password": "nope"})
    # A new app instance (another replica, or after a restart) sees the same attempts in the database.
    other = mif_service.create_app(mif_settings)
    other.dependency_overrides = app.dependency_overrides
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("203.0.113.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as second:
            response = await second.post(
                "/api/v1/auth/login", data={"username": user["username"], "password": PASSWORD}
            )
    assert response.status_code == 429


async def test_last_login_is_recorded(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    me: dict[str, Any] = (await client.get("/api/v1/users/me", headers=user["headers"])).json()
    assert me["last_login"] is not None
