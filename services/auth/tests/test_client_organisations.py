"""Client users belong to an organisation that assets knows: the replica fed by assets' events, one
question to the real assets service on a miss, and what happens when it cannot answer."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import InProcessAssets, client_data
from mif_auth.testing import PASSWORD, MakeUser, known_client
from mif_common.testing.keys import TestKeys

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def client_user(client_id: int, name: str = "cliente") -> dict[str, Any]:
    return {
        "username": name,
        "full_name": "Cliente Test",
        "email": f"{name}@client.ma",
        "role": "client",
        "password": PASSWORD,
        "client_id": client_id,
    }


async def users_named(db_session: AsyncSession, name: str) -> int:
    return int(await db_session.scalar(text('SELECT count(*) FROM "user" WHERE username = :n'), {"n": name}) or 0)


async def replica(db_session: AsyncSession, client_id: int) -> Any:
    return (
        await db_session.execute(
            text("SELECT nom_entreprise, is_active, updated_at FROM client_ref WHERE client_id = :id"),
            {"id": client_id},
        )
    ).one_or_none()


async def test_an_organisation_unknown_to_assets_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser, assets: InProcessAssets, db_session: AsyncSession
) -> None:
    admin = await make_user("admin")
    response = await client.post("/api/v1/users", json=client_user(987654), headers=admin["headers"])
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"] == (
        "No client organisation with id 987654; create the organisation first, then its users."
    )
    assert problem["errors"] == [{"field": "client_id", "message": "unknown client organisation"}]
    assert await users_named(db_session, "cliente") == 0
    assert await replica(db_session, 987654) is None  # nothing cached for an unknown organisation


async def test_a_miss_asks_assets_once_and_the_answer_is_cached(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    assets: InProcessAssets,
    mif_keys: TestKeys,
    db_session: AsyncSession,
) -> None:
    manager = {"Authorization": f"Bearer {mif_keys.token('responsable', user_id=5)}"}
    async with assets.client() as to_assets:
        org = await to_assets.post("/api/v1/clients", json={"nom_entreprise": "Sucrerie du Gharb"}, headers=manager)
    assert org.status_code == 201
    org_id = org.json()["id"]
    admin = await make_user("admin")
    created = await client.post("/api/v1/users", json=client_user(org_id), headers=admin["headers"])
    assert created.status_code == 201, created.text
    assert created.json()["client_id"] == org_id
    cached = await replica(db_session, org_id)
    assert cached.nom_entreprise == "Sucrerie du Gharb" and cached.is_active is True

    # The token of that user names its organisation.
    login = await client.post("/api/v1/auth/login", data={"username": "cliente", "password": PASSWORD})
    claims = jwt.decode(login.json()["access_token"], options={"verify_signature": False})
    assert claims["role"] == "client" and claims["client_id"] == org_id

    # Known now: assets is not asked again (it could not answer anyway).
    app.state.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=FastAPI()))  # answers 404 to anything
    second = await client.post("/api/v1/users", json=client_user(org_id, "cliente2"), headers=admin["headers"])
    assert second.status_code == 201


async def test_assets_unreachable_is_a_503_and_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession
) -> None:
    admin = await make_user("admin")
    app.state.settings = app.state.settings.model_copy(update={"assets_url": "http://127.0.0.1:9"})
    response = await client.post("/api/v1/users", json=client_user(555), headers=admin["headers"])
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("Cannot check the client organisation now")
    assert response.headers["retry-after"] == "5"
    assert await users_named(db_session, "cliente") == 0


async def test_the_replica_is_fed_by_assets_events(
    client: httpx.AsyncClient, make_user: MakeUser, deliver: Callable[..., Any], db_session: AsyncSession
) -> None:
    def data(is_active: bool, at: datetime, nom: str = "Laiterie Atlas") -> dict[str, Any]:
        return client_data(314, is_active=is_active, updated_at=at, nom_entreprise=nom)

    assert await deliver("assets.client.created.v1", data(True, T0), event_id="evt-created")
    assert (await replica(db_session, 314)).nom_entreprise == "Laiterie Atlas"
    assert not await deliver("assets.client.created.v1", data(True, T0), event_id="evt-created")  # duplicate
    admin = await make_user("admin")
    ok = await client.post("/api/v1/users", json=client_user(314), headers=admin["headers"])
    assert ok.status_code == 201  # known from the event: assets is never asked (none runs here)

    await deliver("assets.client.deactivated.v1", data(False, T0 + timedelta(minutes=5)))
    # An older update arriving late does not bring the organisation back.
    await deliver("assets.client.updated.v1", data(True, T0 + timedelta(minutes=1), nom="Ancien nom"))
    row = await replica(db_session, 314)
    assert row.is_active is False and row.nom_entreprise == "Laiterie Atlas"
    refused = await client.post("/api/v1/users", json=client_user(314, "cliente2"), headers=admin["headers"])
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "The client organisation 'Laiterie Atlas' (id 314) is deactivated; reactivate it before giving it users."
    )


@pytest.mark.parametrize("body", [{"client_id": 777}, {"role": "client", "client_id": 777}])
async def test_moving_a_user_to_an_unknown_organisation_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser, assets: InProcessAssets, body: dict[str, Any]
) -> None:
    admin = await make_user("admin")
    user = await make_user("client" if "role" not in body else "technicien")
    response = await client.put(f"/api/v1/users/{user['id']}", json=body, headers=admin["headers"])
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "client_id", "message": "unknown client organisation"}]


async def test_moving_a_user_to_a_known_organisation_needs_no_question(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession
) -> None:
    admin = await make_user("admin")
    user = await make_user("client")
    await known_client(db_session, 43)
    await db_session.commit()
    moved = await client.put(f"/api/v1/users/{user['id']}", json={"client_id": 43}, headers=admin["headers"])
    assert moved.status_code == 200 and moved.json()["client_id"] == 43
