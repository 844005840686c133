"""User management: admin-only writes, uniqueness, policy, deactivation and role changes taking effect at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import PASSWORD, MakeUser, known_client


def new_user(**overrides: Any) -> dict[str, Any]:
    body = {
        "username": "karim",
        "full_name": "Karim Alaoui",
        "email": "karim@example.ma",
        "role": "technicien",
        "password": PASSWORD,
    }
    body.update(overrides)
    return body


async def test_admin_creates_a_user_who_can_sign_in(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession
) -> None:
    admin = await make_user("admin")
    created = await client.post("/api/v1/users/", json=new_user(), headers=admin["headers"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["username"] == "karim" and body["role"] == "technicien" and body["is_active"] is True
    assert "password" not in body and "password_hash" not in body
    login = await client.post("/api/v1/auth/login", data={"username": "karim", "password": PASSWORD})
    assert login.status_code == 200
    # The creation event sits in the outbox, in the same transaction as the user row.
    rows = (
        await db_session.execute(text("SELECT type, subject, envelope FROM outbox WHERE type = 'auth.user.created.v1'"))
    ).all()
    envelope = next(r.envelope for r in rows if r.subject == str(body["id"]))
    assert envelope["specversion"] == "1.0"
    assert envelope["source"] == "/mif/auth"
    assert envelope["data"]["username"] == "karim"
    assert envelope["data"]["token_version"] == 0


@pytest.mark.parametrize("role", ["responsable", "technicien", "client"])
async def test_only_admin_creates_users(client: httpx.AsyncClient, make_user: MakeUser, role: str) -> None:
    caller = await make_user(role)
    response = await client.post("/api/v1/users", json=new_user(), headers=caller["headers"])
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_role_escalation_through_the_body_is_refused(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    tech = await make_user("technicien")
    response = await client.put(
        "/api/v1/users/update", json={"full_name": "x", "role": "admin"}, headers=tech["headers"]
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "role"
    me = (await client.get("/api/v1/auth/me", headers=tech["headers"])).json()
    assert me["role"] == "technicien"
    assert me["full_name"] != "x"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"username": "KARIM", "email": "other@example.ma"}, "username"),
        ({"username": "other", "email": "Karim@Example.MA"}, "email"),
    ],
)
async def test_username_and_email_are_unique_case_insensitively(
    client: httpx.AsyncClient, make_user: MakeUser, overrides: dict[str, str], field: str
) -> None:
    admin = await make_user("admin")
    assert (await client.post("/api/v1/users", json=new_user(), headers=admin["headers"])).status_code == 201
    duplicate = await client.post("/api/v1/users", json=new_user(**overrides), headers=admin["headers"])
    assert duplicate.status_code == 409
    problem = duplicate.json()
    assert problem["errors"][0]["field"] == field
    assert "already" in problem["detail"]


async def test_password_policy_lists_every_failed_rule(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    response = await client.post("/api/v1/users", json=new_user(password="abc"), headers=admin["headers"])
    assert response.status_code == 422
    detail = response.json()["detail"]
    for rule in ("at least 8 characters", "an uppercase letter", "a digit", "a symbol"):
        assert rule in detail
    common = await client.post("/api/v1/users", json=new_user(password="Password123!"), headers=admin["headers"])
    assert common.status_code == 422
    assert "common password" in common.json()["detail"]


async def test_client_users_need_an_organisation(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession
) -> None:
    admin = await make_user("admin")
    await known_client(db_session, 3)
    await db_session.commit()
    missing = await client.post("/api/v1/users", json=new_user(role="client"), headers=admin["headers"])
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "client_id"
    wrong = await client.post("/api/v1/users", json=new_user(client_id=3), headers=admin["headers"])
    assert wrong.status_code == 422
    ok = await client.post("/api/v1/users", json=new_user(role="client", client_id=3), headers=admin["headers"])
    assert ok.status_code == 201
    assert ok.json()["client_id"] == 3


async def test_deactivation_cuts_tokens_and_sessions_at_once(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    tech = await make_user("technicien")
    assert (await client.get("/api/v1/auth/me", headers=tech["headers"])).status_code == 200
    assert (await client.delete(f"/api/v1/users/{tech['id']}", headers=admin["headers"])).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=tech["headers"])).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": tech["tokens"]["refresh_token"]})
    assert refresh.status_code == 401
    login = await client.post("/api/v1/auth/login", data={"username": tech["username"], "password": PASSWORD})
    assert login.status_code == 401
    assert "deactivated" in login.json()["detail"]
    # Soft delete: still listed, inactive; reactivation lets the user back in.
    listed = (await client.get(f"/api/v1/users/{tech['id']}", headers=admin["headers"])).json()
    assert listed["is_active"] is False
    assert (await client.patch(f"/api/v1/users/{tech['id']}/activate", headers=admin["headers"])).status_code == 200
    again = await client.post("/api/v1/auth/login", data={"username": tech["username"], "password": PASSWORD})
    assert again.status_code == 200


async def test_role_change_invalidates_existing_access_tokens(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    manager = await make_user("responsable")
    demoted = await client.put(f"/api/v1/users/{manager['id']}", json={"role": "technicien"}, headers=admin["headers"])
    assert demoted.status_code == 200
    assert (await client.get("/api/v1/users", headers=manager["headers"])).status_code == 401
    fresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": manager["tokens"]["refresh_token"]})
    assert fresh.status_code == 200
    headers = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403


async def test_admin_cannot_lock_themselves_out(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    assert (await client.delete(f"/api/v1/users/{admin['id']}", headers=admin["headers"])).status_code == 409
    demote = await client.put(f"/api/v1/users/{admin['id']}", json={"role": "responsable"}, headers=admin["headers"])
    assert demote.status_code == 409


async def test_profile_and_password_changes(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    tech = await make_user("technicien")
    renamed = await client.put("/api/v1/users/update", json={"full_name": "Samira B."}, headers=tech["headers"])
    assert renamed.status_code == 200 and renamed.json()["full_name"] == "Samira B."
    no_current = await client.put("/api/v1/users/update", json={"password": "N3w!Secret-pass"}, headers=tech["headers"])
    assert no_current.status_code == 400
    changed = await client.post(
        "/api/v1/auth/change-password",
        json={"current_password": PASSWORD, "new_password": "N3w!Secret-pass"},
        headers=tech["headers"],
    )
    assert changed.status_code == 200
    # The old access token and refresh token are dead; the new password works.
    assert (await client.get("/api/v1/auth/me", headers=tech["headers"])).status_code == 401
    old_refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": tech["tokens"]["refresh_token"]})
    assert old_refresh.status_code == 401
    new_headers = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=new_headers)).status_code == 200
    login = await client.post("/api/v1/auth/login", data={"username": tech["username"], "password": "N3w!Secret-pass"})
    assert login.status_code == 200


async def test_users_read_their_own_record_only(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    tech = await make_user("technicien")
    other = await make_user("technicien")
    assert (await client.get(f"/api/v1/users/{tech['id']}", headers=tech["headers"])).status_code == 200
    assert (await client.get(f"/api/v1/users/{other['id']}", headers=tech["headers"])).status_code == 403
    assert (await client.get("/api/v1/users", headers=tech["headers"])).status_code == 403


async def test_list_is_a_bare_array_with_paging_headers(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin")
    for n in range(4):
        await make_user("technicien")
        del n
    page = await client.get("/api/v1/users/?role=technicien&limit=2&offset=1&sort=-id", headers=admin["headers"])
    assert page.status_code == 200
    body = page.json()
    assert isinstance(body, list) and len(body) == 2
    assert body[0]["id"] > body[1]["id"]
    assert page.headers["x-total-count"] == "4"
    assert 'rel="next"' in page.headers["link"] and 'rel="prev"' in page.headers["link"]
    search = await client.get("/api/v1/users?q=TECHNICIEN2", headers=admin["headers"])
    assert [u["username"] for u in search.json()] == ["technicien2"]
