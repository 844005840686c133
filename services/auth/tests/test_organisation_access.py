"""Deactivating a client organisation (assets' `assets.client.deactivated.v1`) ends its users' access at
once: new token versions, refresh tokens revoked, sign-in refused with a sentence that says why, and an
`auth.user.updated.v1` per user with `organisation_active` false for the gateway's and the services'
token states. Reactivating it lets them sign in again; tokens issued before the deactivation stay dead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import PASSWORD, MakeUser

ORG = 7301
OTHER_ORG = 7302
REFUSED = (
    "The client organisation 'Cimenterie du Souss' of this account is deactivated; contact your maintenance provider."
)


def organisation(is_active: bool, at: datetime, *, client_id: int = ORG) -> dict[str, Any]:
    """`data` of an `assets.client.*.v1` event (services/assets/mif_assets/events.py)."""
    return {
        "client_id": client_id,
        "nom_entreprise": "Cimenterie du Souss",
        "type_client": "entreprise",
        "niveau_service": "standard",
        "is_active": is_active,
        "pays": "Maroc",
        "version": 2,
        "updated_at": at.isoformat(),
    }


async def version_of(db_session: AsyncSession, user_id: int) -> int:
    return int(await db_session.scalar(text('SELECT token_version FROM "user" WHERE id = :id'), {"id": user_id}))


async def organisation_events(db_session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    rows = await db_session.execute(
        text("SELECT envelope FROM outbox WHERE type = 'auth.user.updated.v1' AND subject = :s ORDER BY created_at"),
        {"s": str(user_id)},
    )
    return [r.envelope["data"] for r in rows if r.envelope["data"]["changed"] == ["organisation_active"]]


def sign_in(client: httpx.AsyncClient, username: str) -> Any:
    return client.post("/api/v1/auth/login", data={"username": username, "password": PASSWORD})


async def test_deactivating_an_organisation_ends_its_users_access_and_reactivating_restores_it(
    client: httpx.AsyncClient, make_user: MakeUser, deliver: Callable[..., Any], db_session: AsyncSession
) -> None:
    cliente = await make_user("client", client_id=ORG)
    colleague = await make_user("client", client_id=ORG)
    elsewhere = await make_user("client", client_id=OTHER_ORG)
    tech = await make_user("technicien")
    before = {u["id"]: await version_of(db_session, u["id"]) for u in (cliente, colleague, elsewhere, tech)}
    assert (await client.get("/api/v1/auth/me", headers=cliente["headers"])).status_code == 200

    t0 = datetime.now(UTC) + timedelta(minutes=1)  # newer than the replica row make_user wrote
    assert await deliver("assets.client.deactivated.v1", organisation(False, t0))

    # Every user of the organisation, and only those, got a new token version.
    for user in (cliente, colleague):
        assert await version_of(db_session, user["id"]) == before[user["id"]] + 1
    for user in (elsewhere, tech):
        assert await version_of(db_session, user["id"]) == before[user["id"]]
    # ... announced to the token states, saying why.
    (announced,) = await organisation_events(db_session, cliente["id"])
    assert announced["organisation_active"] is False and announced["is_active"] is True
    assert announced["token_version"] == before[cliente["id"]] + 1
    assert await organisation_events(db_session, elsewhere["id"]) == []

    # Existing access and refresh tokens are refused; sign-in says the organisation is deactivated.
    me = await client.get("/api/v1/auth/me", headers=cliente["headers"])
    assert me.status_code == 401 and me.headers["content-type"] == "application/problem+json"
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": cliente["tokens"]["refresh_token"]})
    assert refresh.status_code == 401
    login = await sign_in(client, cliente["username"])
    assert login.status_code == 401
    assert login.headers["content-type"] == "application/problem+json"
    assert login.json()["detail"] == REFUSED
    # A wrong password learns nothing about the organisation.
    wrong = await client.post("/api/v1/auth/login", data={"username": colleague["username"], "password": "x" * 12})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "Wrong username/e-mail or password."
    # Users of other organisations and staff are untouched.
    assert (await client.get("/api/v1/auth/me", headers=elsewhere["headers"])).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=tech["headers"])).status_code == 200

    # The token states the gateway and the services load say so too.
    snapshot = (await client.get("/api/v1/auth/internal/token-states")).json()
    rows = {row["user_id"]: row for row in snapshot}
    assert rows[cliente["id"]]["organisation_active"] is False
    assert rows[elsewhere["id"]]["organisation_active"] is True and rows[tech["id"]]["organisation_active"] is True
    one = (await client.get(f"/api/v1/auth/internal/token-states/{cliente['id']}")).json()
    assert one == {
        "user_id": cliente["id"],
        "is_active": True,
        "token_version": before[cliente["id"]] + 1,
        "organisation_active": False,
    }

    # The same news again (a duplicate under another id, or a later edit of the still inactive
    # organisation) changes nothing more.
    await deliver("assets.client.updated.v1", organisation(False, t0 + timedelta(minutes=1)))
    assert await version_of(db_session, cliente["id"]) == before[cliente["id"]] + 1

    # Reactivation: a new version again, sign-in works, the old token stays dead.
    await deliver("assets.client.updated.v1", organisation(True, t0 + timedelta(minutes=2)))
    assert await version_of(db_session, cliente["id"]) == before[cliente["id"]] + 2
    reactivated = (await organisation_events(db_session, cliente["id"]))[-1]
    assert reactivated["organisation_active"] is True
    again = await sign_in(client, cliente["username"])
    assert again.status_code == 200, again.text
    fresh = {"Authorization": f"Bearer {again.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=fresh)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=cliente["headers"])).status_code == 401
    one = (await client.get(f"/api/v1/auth/internal/token-states/{cliente['id']}")).json()
    assert one["organisation_active"] is True and one["token_version"] == before[cliente["id"]] + 2

    # A deactivation older than the reactivation, arriving late, changes nothing.
    await deliver("assets.client.deactivated.v1", organisation(False, t0 + timedelta(seconds=90)))
    assert await version_of(db_session, cliente["id"]) == before[cliente["id"]] + 2
    assert (await sign_in(client, colleague["username"])).status_code == 200


async def test_the_token_state_of_a_user_nobody_knows_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/internal/token-states/987654321")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "No user with id 987654321."
