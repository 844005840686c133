"""Password changes sent as the web frontend sends them (forms), and password-policy refusals worded as
plain sentences wherever they are shown (user creation, password change, own profile, first admin)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mif_auth import bootstrap
from mif_auth.config import AuthSettings
from mif_auth.passwords import policy_failures, policy_refusal
from mif_auth.testing import PASSWORD, MakeUser
from mif_common.config import ServiceSettings

CHANGE = "/api/v1/auth/change-password"
NEW_PASSWORD = "N3w!Secret-pass"


def as_form(kind: str, fields: dict[str, str]) -> dict[str, Any]:
    """httpx arguments sending `fields` as a multipart or a urlencoded form."""
    if kind == "multipart":
        return {"files": {name: (None, value) for name, value in fields.items()}}
    return {"data": fields}


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", data={"username": username, "password": password})


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


@pytest.mark.parametrize("kind", ["multipart", "urlencoded"])
async def test_password_changed_through_a_form(client: httpx.AsyncClient, make_user: MakeUser, kind: str) -> None:
    user = await make_user()
    changed = await client.post(
        CHANGE,
        **as_form(kind, {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        headers=user["headers"],
    )
    assert changed.status_code == 200, changed.text
    pair = changed.json()
    assert set(pair) == {"access_token", "token_type", "refresh_token", "expires_in"}
    assert pair["token_type"] == "bearer"
    # Every other session ended; the returned pair is the live one.
    assert (await client.get("/api/v1/auth/me", headers=user["headers"])).status_code == 401
    old_refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": user["tokens"]["refresh_token"]})
    assert old_refresh.status_code == 401
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    # The new password signs in, the old one no longer does.
    assert (await sign_in(client, user["username"], NEW_PASSWORD)).status_code == 200
    assert (await sign_in(client, user["username"], PASSWORD)).status_code == 401


@pytest.mark.parametrize("kind", ["multipart", "urlencoded"])
@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"current_password": PASSWORD}, "new_password"),
        ({"new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD, "new_password": ""}, "new_password"),
        ({"current_password": "  ", "new_password": NEW_PASSWORD}, "current_password"),
    ],
)
async def test_a_missing_or_blank_form_field_is_named(
    client: httpx.AsyncClient, make_user: MakeUser, kind: str, fields: dict[str, str], missing: str
) -> None:
    user = await make_user()
    response = await client.post(CHANGE, **as_form(kind, fields), headers=user["headers"])
    problem = assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == [missing]
    assert missing in problem["detail"]
    # Nothing changed: the session lives on and the old password still signs in.
    assert (await client.get("/api/v1/auth/me", headers=user["headers"])).status_code == 200
    assert (await sign_in(client, user["username"], PASSWORD)).status_code == 200


async def test_change_password_refusals_keep_their_shape(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    wrong = await client.post(
        CHANGE,
        **as_form("multipart", {"current_password": "N0t!theOne", "new_password": NEW_PASSWORD}),
        headers=user["headers"],
    )
    assert assert_problem(wrong, 400)["errors"] == [{"field": "current_password", "message": "wrong password"}]
    plain = await client.post(
        CHANGE, content=b"current_password=x", headers={**user["headers"], "content-type": "text/plain"}
    )
    assert_problem(plain, 415)
    unknown = await client.post(
        CHANGE,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": "x"},
        headers=user["headers"],
    )
    assert assert_problem(unknown, 422)["errors"] == [{"field": "extra", "message": "unknown field"}]
    anonymous = await client.post(CHANGE, **as_form("multipart", {"current_password": PASSWORD}))
    assert_problem(anonymous, 401)
    assert (await sign_in(client, user["username"], PASSWORD)).status_code == 200


async def test_openapi_documents_the_three_body_types(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/auth/openapi.json")).json()
    body = spec["paths"]["/api/v1/auth/change-password"]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/json", "multipart/form-data", "application/x-www-form-urlencoded"}
    for media in body["content"].values():
        schema = media["schema"]
        assert schema["required"] == ["current_password", "new_password"]
        assert schema["properties"]["new_password"]["format"] == "password"


# --- policy sentences ---------------------------------------------------------------------------


def test_each_failed_rule_is_its_own_sentence() -> None:
    assert policy_refusal(policy_failures("samira", username="samira", email="s.b@example.ma")) == (
        "The password is too weak: it must be at least 8 characters long; it must contain an uppercase letter; "
        "it must contain a digit; it must contain a symbol; it must not contain the username."
    )
    assert policy_refusal(policy_failures("password")) == (
        "The password is too weak: it must contain an uppercase letter; it must contain a digit; "
        "it must contain a symbol; it must not be a common password."
    )
    assert policy_refusal(policy_failures("Aa1!" + "é" * 40)) == (
        "The password is too weak: it must be at most 72 characters long (accented letters count as two or more)."
    )


async def test_user_creation_refusal_reads_as_sentences(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    body = {
        "username": "samira",
        "full_name": "Samira B.",
        "email": "s.b@example.ma",
        "role": "technicien",
        "password": "samira",
    }
    response = await client.post("/api/v1/users", json=body, headers=admin["headers"])
    problem = assert_problem(response, 422)
    assert problem["title"] == "Password too weak"
    assert problem["detail"] == (
        "The password is too weak: it must be at least 8 characters long; it must contain an uppercase letter; "
        "it must contain a digit; it must contain a symbol; it must not contain the username."
    )
    assert problem["errors"] == [
        {"field": "password", "message": "must be at least 8 characters long"},
        {"field": "password", "message": "must contain an uppercase letter"},
        {"field": "password", "message": "must contain a digit"},
        {"field": "password", "message": "must contain a symbol"},
        {"field": "password", "message": "must not contain the username"},
    ]


async def test_password_change_refusals_read_as_sentences(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user(username="nadia.k", email="nadia.k@example.ma")
    weak = "nadia.k2024"
    expected = (
        "The password is too weak: it must contain an uppercase letter; "
        "it must not contain the username; it must not contain the e-mail address."
    )
    changed = await client.post(
        CHANGE, **as_form("multipart", {"current_password": PASSWORD, "new_password": weak}), headers=user["headers"]
    )
    problem = assert_problem(changed, 422)
    assert problem["detail"] == expected
    assert {e["field"] for e in problem["errors"]} == {"new_password"}
    assert [e["message"] for e in problem["errors"]] == [
        "must contain an uppercase letter",
        "must not contain the username",
        "must not contain the e-mail address",
    ]
    profile = await client.put(
        "/api/v1/users/update", json={"password": weak, "current_password": PASSWORD}, headers=user["headers"]
    )
    problem = assert_problem(profile, 422)
    assert problem["detail"] == expected
    assert {e["field"] for e in problem["errors"]} == {"password"}
    assert (await sign_in(client, user["username"], PASSWORD)).status_code == 200


async def test_first_admin_refusal_reads_as_sentences(
    mif_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert isinstance(mif_settings, AuthSettings)
    monkeypatch.setenv("MIF_ADMIN_USERNAME", "rootadmin")
    monkeypatch.setenv("MIF_ADMIN_EMAIL", "boss@example.ma")
    monkeypatch.setenv("MIF_ADMIN_PASSWORD", "rootadmin")
    assert await bootstrap.run(mif_settings) == 1
    assert capsys.readouterr().err == (
        "Cannot create the first admin. The password is too weak: it must contain an uppercase letter; "
        "it must contain a digit; it must contain a symbol; it must not contain the username.\n"
    )
