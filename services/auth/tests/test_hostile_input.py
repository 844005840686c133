"""Sign-in and password forms with hostile input (NUL characters, unpaired surrogates, JSON nested 10 000
deep): a 400 problem+json, and nothing stored (no user, no session, no sign-in attempt, no event)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import PASSWORD, MakeUser

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def stored(db_session: AsyncSession) -> tuple[int, ...]:
    row = (
        await db_session.execute(
            text(
                'SELECT (SELECT count(*) FROM "user"), (SELECT count(*) FROM refresh_token),'
                " (SELECT count(*) FROM login_attempt), (SELECT count(*) FROM outbox)"
            )
        )
    ).one()
    return tuple(int(v) for v in row)


def assert_refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == 400 and problem["title"] and problem["detail"].endswith(".")
    assert problem["request_id"] and problem["instance"] == response.request.url.path
    return problem


def multipart(fields: dict[str, str]) -> dict[str, Any]:
    return {"files": {name: (None, value) for name, value in fields.items()}}


SIGN_IN_BODIES = [
    pytest.param({"content": b'{"username": "admin\\u0000", "password": "x"}', "headers": JSON}, id="json NUL"),
    pytest.param({"content": b'{"username": "admin", "pass\\u0000word": "x"}', "headers": JSON}, id="json NUL key"),
    pytest.param({"content": b'{"username": "\\ud9ca", "password": "x"}', "headers": JSON}, id="json lone surrogate"),
    pytest.param(
        {"content": '{"username": "\ud9ca\udc5a", "password": "x"}'.encode("utf-8", "surrogatepass"), "headers": JSON},
        id="json surrogates as raw bytes",
    ),
    pytest.param({"content": b"[" * 10_000 + b"]" * 10_000, "headers": JSON}, id="json 10000 deep"),
    pytest.param({"content": b'{"username":' * 20_000 + b"1" + b"}" * 20_000, "headers": JSON}, id="json objects deep"),
    pytest.param({"content": b"username=admin%00&password=x", "headers": FORM}, id="urlencoded NUL"),
    pytest.param(multipart({"username": "admin\x00", "password": "x"}), id="multipart NUL"),
]


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/token"])
@pytest.mark.parametrize("request_kw", SIGN_IN_BODIES)
async def test_hostile_sign_in_is_400_and_stores_nothing(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession, path: str, request_kw: dict[str, Any]
) -> None:
    await make_user("admin", username="admin")
    before = await stored(db_session)
    assert_refused(await client.post(path, **request_kw))
    assert await stored(db_session) == before


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 10_000 + b"]" * 10_000,  # a connection reset before the guard
        b'{"refresh_token": "\\u0000"}',
        b'{"refresh_token": "\\udfff"}',
    ],
)
async def test_hostile_refresh_is_400(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession, content: bytes
) -> None:
    await make_user()
    before = await stored(db_session)
    assert_refused(await client.post("/api/v1/auth/refresh", content=content, headers=JSON))
    assert await stored(db_session) == before


@pytest.mark.parametrize("kind", ["multipart", "urlencoded", "json"])
async def test_a_nul_in_a_password_change_is_400_and_changes_nothing(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession, kind: str
) -> None:
    user = await make_user()
    fields = {"current_password": PASSWORD, "new_password": "Nouveau-mot-de-passe-1\x00"}
    if kind == "multipart":
        kw: dict[str, Any] = multipart(fields)
    elif kind == "urlencoded":
        kw = {"content": b"current_password=" + PASSWORD.encode() + b"&new_password=Nouveau-1%00x", "headers": FORM}
    else:
        kw = {"json": fields}
    before = await stored(db_session)
    kw["headers"] = {**kw.get("headers", {}), **user["headers"]}
    response = await client.post("/api/v1/auth/change-password", **kw)
    problem = assert_refused(response)
    if kind == "multipart":  # read by auth's form reader, which names the field
        assert problem["errors"] == [{"field": "new_password", "message": "must not contain a NUL character"}]
    assert await stored(db_session) == before
    # The password is unchanged: the old one still signs in.
    signed_in = await client.post("/api/v1/auth/login", data={"username": user["username"], "password": PASSWORD})
    assert signed_in.status_code == 200


async def test_a_nul_in_the_user_search_is_400(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    response = await client.get("/api/v1/users?q=adm%00in", headers=admin["headers"])
    assert assert_refused(response)["type"].endswith("/nul-character")
