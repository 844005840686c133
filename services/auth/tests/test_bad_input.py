"""Bad input and forged tokens: always a 4xx problem+json, never a write, never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import PASSWORD, MakeUser
from mif_common.testing.keys import TestKeys


async def user_count(db_session: AsyncSession) -> int:
    return int((await db_session.execute(text('SELECT count(*) FROM "user"'))).scalar_one())


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"] and body["title"] and body["type"].startswith("https://")
    assert body["request_id"]
    assert "Traceback" not in response.text
    return body


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"username": "x",', "application/json", 422),
        (b"[1, 2, 3]", "application/json", 422),
        (b"username=x", "text/plain", 422),
        (b"\xff\xfe\x00garbage", "application/json", 422),
        (b"", "application/json", 422),
    ],
)
async def test_malformed_bodies_write_nothing(
    client: httpx.AsyncClient,
    make_user: MakeUser,
    db_session: AsyncSession,
    content: bytes,
    content_type: str,
    status: int,
) -> None:
    admin = await make_user("admin")
    before = await user_count(db_session)
    response = await client.post(
        "/api/v1/users", content=content, headers={**admin["headers"], "content-type": content_type}
    )
    assert_problem(response, status)
    assert await user_count(db_session) == before


async def test_oversized_body_is_413(client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession) -> None:
    admin = await make_user("admin")
    before = await user_count(db_session)
    huge = json.dumps({"username": "x" * 2_000_000}).encode()
    response = await client.post(
        "/api/v1/users", content=huge, headers={**admin["headers"], "content-type": "application/json"}
    )
    assert_problem(response, 413)

    async def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        for _ in range(40):
            yield b"x" * 65536

    streamed = await client.post("/api/v1/users", content=chunks(), headers=admin["headers"])
    assert_problem(streamed, 413)
    assert await user_count(db_session) == before


async def test_unknown_fields_are_refused(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    body = {
        "username": "omar",
        "full_name": "Omar",
        "email": "omar@example.ma",
        "role": "technicien",
        "password": PASSWORD,
        "is_superuser": True,
    }
    problem = assert_problem(await client.post("/api/v1/users", json=body, headers=admin["headers"]), 422)
    assert problem["errors"] == [{"field": "is_superuser", "message": "unknown field"}]


async def test_sql_and_html_are_stored_as_text(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    name = 'Robert\'); DROP TABLE "user"; -- <script>alert(1)</script>'
    body = {
        "username": "bobby",
        "full_name": name,
        "email": "bobby@example.ma",
        "role": "technicien",
        "password": PASSWORD,
    }
    created = await client.post("/api/v1/users", json=body, headers=admin["headers"])
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    fetched = await client.get(f"/api/v1/users/{created.json()['id']}", headers=admin["headers"])
    assert fetched.json()["full_name"] == name
    search = await client.get("/api/v1/users", params={"q": "'; DROP TABLE user; --"}, headers=admin["headers"])
    assert search.status_code == 200 and search.json() == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=501",
        "limit=99999999999999999999999",
        "offset=-5",
        "offset=abc",
        "sort=password_hash",
        "role=root",
    ],
)
async def test_bad_list_parameters(client: httpx.AsyncClient, make_user: MakeUser, query: str) -> None:
    admin = await make_user("admin")
    problem = assert_problem(await client.get(f"/api/v1/users?{query}", headers=admin["headers"]), 422)
    assert problem["errors"]


@pytest.mark.parametrize("user_id", ["0", "-3", "abc", "99999999999999999999999", "1.5"])
async def test_bad_ids(client: httpx.AsyncClient, make_user: MakeUser, user_id: str) -> None:
    admin = await make_user("admin")
    assert_problem(await client.get(f"/api/v1/users/{user_id}", headers=admin["headers"]), 422)


# Found by the fuzz suite (tests/reliability/test_fuzz_e2e.py): a client id past PostgreSQL's bigint was a 500.
OUT_OF_RANGE = 2**63


async def test_out_of_range_client_ids_are_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    body = {"username": "huge", "full_name": "Huge Id", "email": "huge@mif.ma", "role": "client", "password": PASSWORD}
    created = await client.post("/api/v1/users", json={**body, "client_id": OUT_OF_RANGE}, headers=admin["headers"])
    assert assert_problem(created, 422)["errors"][0]["field"] == "client_id"
    target = await make_user("technicien")
    changed = await client.put(
        f"/api/v1/users/{target['id']}", json={"role": "client", "client_id": OUT_OF_RANGE}, headers=admin["headers"]
    )
    assert assert_problem(changed, 422)["errors"][0]["field"] == "client_id"
    listed = await client.get(f"/api/v1/users?client_id={OUT_OF_RANGE}", headers=admin["headers"])
    assert assert_problem(listed, 422)["errors"][0]["field"] == "client_id"


async def test_missing_user_is_404_problem(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    assert_problem(await client.get("/api/v1/users/987654321", headers=admin["headers"]), 404)
    assert_problem(await client.get("/api/v1/nothing-here", headers=admin["headers"]), 404)
    assert_problem(await client.delete("/api/v1/auth/me", headers=admin["headers"]), 405)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """The classic confusion attack: HMAC-sign with the public key (PyJWT itself refuses to)."""
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def forged_tokens(keys: TestKeys, real: str, user_id: int) -> dict[str, str]:
    header, _payload, signature = real.split(".")
    claims = jwt.decode(real, options={"verify_signature": False})
    public_pem = keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    tampered = dict(claims, role="admin")
    return {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': keys.kid})}.{_b64(claims)}.",
        "hs256_with_public_key": _hs256(claims, public_pem, keys.kid),
        "expired": keys.token("admin", user_id=user_id, iat=now - 3600, nbf=now - 3600, exp=now - 1800),
        "not_yet_valid": keys.token("admin", user_id=user_id, nbf=now + 3600),
        "wrong_issuer": keys.token("admin", user_id=user_id, iss="someone-else"),
        "wrong_audience": keys.token("admin", user_id=user_id, aud="another-api"),
        "unknown_kid": keys.token("admin", user_id=user_id, headers={"kid": "nope"}),
        "tampered_payload": f"{header}.{_b64(tampered)}.{signature}",
        "refresh_type": keys.token("admin", user_id=user_id, typ="refresh"),
        "no_kid": jwt.encode({**claims}, keys.private_key, algorithm="EdDSA"),
        "garbage": "not.a.jwt",
    }


async def test_forged_or_invalid_tokens_are_401(
    client: httpx.AsyncClient, make_user: MakeUser, mif_keys: TestKeys
) -> None:
    admin = await make_user("admin")
    real = mif_keys.token("admin", user_id=admin["id"])
    for name, token in forged_tokens(mif_keys, real, admin["id"]).items():
        response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith("Bearer")
    for header in ("Basic YWRtaW46YWRtaW4=", "Bearer", ""):
        assert (await client.get("/api/v1/auth/me", headers={"Authorization": header})).status_code == 401


async def test_token_of_a_deleted_user_is_401(client: httpx.AsyncClient, mif_keys: TestKeys) -> None:
    token = mif_keys.token("admin", user_id=999_999)
    assert (await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})).status_code == 401


async def test_request_id_is_echoed_or_minted(client: httpx.AsyncClient) -> None:
    kept = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["x-request-id"] == "abc-123"
    replaced = await client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert replaced.headers["x-request-id"] != "bad id\twith spaces"
    assert len(replaced.headers["x-request-id"]) == 32


async def test_health_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json()["status"] == "ok"
    ready = await client.get("/health/ready")
    assert ready.json()["checks"]["database"] == "ok"
    await client.get("/api/v1/auth/.well-known/jwks.json")
    metrics = await client.get("/metrics")
    assert (
        'mif_http_request_duration_seconds_count{method="GET",route="/api/v1/auth/.well-known/jwks.json"'
        in metrics.text
    )


async def test_openapi_is_served_under_the_service_prefix(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/auth/openapi.json")).json()
    assert "/api/v1/auth/login" in spec["paths"]
    assert "/api/v1/users" in spec["paths"]
    assert (await client.get("/api/v1/auth/docs")).status_code == 200


async def test_refused_sign_ins_and_refreshes_are_documented_problems(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user("technicien")
    wrong = await client.post("/api/v1/auth/login", data={"username": user["username"], "password": "Wrong-pass-1"})
    assert assert_problem(wrong, 401)["instance"] == "/api/v1/auth/login"
    assert wrong.json()["request_id"] == wrong.headers["x-request-id"]
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": "not-a-token-at-all"})
    assert assert_problem(refresh, 401)["instance"] == "/api/v1/auth/refresh"
    spec = (await client.get("/api/v1/auth/openapi.json")).json()
    login = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"401", "429"} <= set(login) and "403" not in login  # a deactivated organisation is a 401 too
    assert "organisation" in login["401"]["description"]
    assert login["429"]["content"] == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    refresh_answers = spec["paths"]["/api/v1/auth/refresh"]["post"]["responses"]
    assert "401" in refresh_answers and "403" not in refresh_answers
