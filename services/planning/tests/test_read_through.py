"""A replica miss asks the owner once, as the caller, and caches the answer: users from the real auth
app, equipment from the real assets app (both in process, rolled back). An owner that cannot answer
is a 503 naming what could not be checked."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.testing.keys import TestKeys
from mif_planning.testing import Headers

from .conftest import Owners


def as_user(keys: TestKeys, role: str, user_id: int) -> Headers:
    return {"Authorization": f"Bearer {keys.token(role, user_id=user_id)}"}


async def test_a_user_unknown_to_the_replica_is_asked_from_auth_once(
    app: FastAPI, client: httpx.AsyncClient, owners: Owners, mif_keys: TestKeys, db_session: AsyncSession
) -> None:
    manager = as_user(mif_keys, "responsable", await owners.auth.user("responsable"))
    tech_id = await owners.auth.user("technicien", full_name="Youssef Idrissi")
    response = await client.post("/api/v1/techniciens", json={"user_id": tech_id}, headers=manager)
    assert response.status_code == 201, response.text
    assert response.json()["user"]["full_name"] == "Youssef Idrissi"
    cached = (
        await db_session.execute(text("SELECT role, is_active FROM user_ref WHERE user_id = :id"), {"id": tech_id})
    ).one()
    assert tuple(cached) == ("technicien", True)

    # Known now: auth is not asked again (here it could not answer).
    app.state.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=FastAPI()))  # 404 to anything
    again = await client.get(f"/api/v1/techniciens/{response.json()['id']}", headers=manager)
    assert again.status_code == 200


async def test_auth_tells_the_role_and_unknown_users(
    client: httpx.AsyncClient, owners: Owners, mif_keys: TestKeys, db_session: AsyncSession
) -> None:
    manager = as_user(mif_keys, "responsable", await owners.auth.user("responsable"))
    other_manager = await owners.auth.user("responsable", username="chefequipe")
    wrong_role = await client.post("/api/v1/techniciens", json={"user_id": other_manager}, headers=manager)
    assert wrong_role.status_code == 400
    assert "has the role 'responsable'" in wrong_role.json()["detail"]
    unknown = await client.post("/api/v1/techniciens", json={"user_id": 987654321}, headers=manager)
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == (
        "No user with id 987654321; create the user account first (POST /api/v1/users)."
    )
    assert await db_session.scalar(text("SELECT count(*) FROM user_ref WHERE user_id = 987654321")) == 0


async def test_auth_unreachable_is_a_503_and_writes_nothing(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession
) -> None:
    response = await client.post("/api/v1/techniciens", json={"user_id": 555555}, headers=manager)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"] == (
        "Cannot check the user account now: the auth service did not answer. Try again in a moment."
    )
    assert await db_session.scalar(text("SELECT count(*) FROM technicien WHERE user_id = 555555")) == 0


async def test_an_equipment_unknown_to_the_replica_is_asked_from_assets(
    client: httpx.AsyncClient, owners: Owners, manager: Headers, db_session: AsyncSession
) -> None:
    async with owners.assets.client() as to_assets:
        made = await to_assets.post(
            "/api/v1/equipements",
            json={"nom": "Pompe doseuse P-12", "type": "pompe", "localisation": "Station 2"},
            headers=manager,
        )
    assert made.status_code == 201, made.text
    eid = made.json()["id"]
    plan = await client.post("/api/v1/planning", json={"equipement_id": eid, "frequence": "weekly"}, headers=manager)
    assert plan.status_code == 201, plan.text
    assert plan.json()["equipement"] == {"id": eid, "nom": "Pompe doseuse P-12"}
    cached = await db_session.scalar(text("SELECT nom FROM equipement_ref WHERE equipement_id = :id"), {"id": eid})
    assert cached == "Pompe doseuse P-12"

    unknown = await client.post(
        "/api/v1/planning", json={"equipement_id": 876543210, "frequence": "weekly"}, headers=manager
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == "No equipment with id 876543210; a plan needs an existing equipment."


async def test_recommendation_checks_the_equipment_too(
    client: httpx.AsyncClient, owners: Owners, manager: Headers
) -> None:
    response = await client.get(
        "/api/v1/techniciens/recommandation", params={"equipement_id": 876543210}, headers=manager
    )
    assert response.status_code == 422


async def test_a_caller_auth_refuses_makes_the_check_unavailable(
    client: httpx.AsyncClient, owners: Owners, auth_headers: Callable[..., Headers]
) -> None:
    # This manager exists for planning's token check but not in auth: auth refuses to answer it.
    response = await client.post(
        "/api/v1/techniciens", json={"user_id": 444444}, headers=auth_headers("responsable", user_id=999_999_001)
    )
    assert response.status_code == 503
