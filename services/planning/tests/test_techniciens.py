"""Technician profiles and competences through the HTTP API: the contract of DOMAIN.md §3/§8, the
row-level rules per role, and the `planning.technicien.*.v1` events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import user_data
from mif_planning.testing import Deliver, Headers, Make, MakeTech, outbox_envelopes


async def technicien_events(db_session: AsyncSession, technicien_id: int) -> list[dict[str, Any]]:
    return [
        e
        for e in await outbox_envelopes(db_session, type_prefix="planning.technicien.")
        if e["subject"] == str(technicien_id)
    ]


async def test_a_manager_creates_a_profile_with_the_user_embedded(
    client: httpx.AsyncClient,
    manager: Headers,
    known_user: Callable[..., Any],
    make_competence: Make,
    db_session: AsyncSession,
) -> None:
    user_id = await known_user(full_name="Karim Alaoui", username="kalaoui", email="karim@mif.ma")
    soudure = await make_competence(nom="Soudure")
    hydraulique = await make_competence(nom="Hydraulique", domaine="fluides")
    body = {
        "user_id": user_id,
        "equipe": "Équipe Nord",
        "zone": "Casablanca",
        "competences_ids": [soudure["id"], hydraulique["id"]],
    }
    response = await client.post("/api/v1/techniciens/", json=body, headers=manager)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/api/v1/techniciens/{created['id']}"
    assert created["user_id"] == user_id
    assert created["user"] == {
        "id": user_id,
        "username": "kalaoui",
        "email": "karim@mif.ma",
        "full_name": "Karim Alaoui",
        "is_active": True,
    }
    assert created["equipe"] == "Équipe Nord" and created["zone"] == "Casablanca"
    assert created["disponibilite"] == "disponible" and created["is_active"] is True
    assert created["charge_travail"] == 0 and created["version"] == 1
    assert created["competences"] == [
        {"id": soudure["id"], "nom": "Soudure", "domaine": "mécanique", "niveau": "intermediaire"},
        {"id": hydraulique["id"], "nom": "Hydraulique", "domaine": "fluides", "niveau": "intermediaire"},
    ]
    [event] = await technicien_events(db_session, created["id"])
    assert event["type"] == "planning.technicien.created.v1"
    assert event["source"] == "/mif/planning"
    data = event["data"]
    assert data["technicien_id"] == created["id"] and data["user_id"] == user_id
    assert data["full_name"] == "Karim Alaoui" and data["username"] == "kalaoui" and data["email"] == "karim@mif.ma"
    assert data["version"] == 1 and data["is_active"] is True and data["disponibilite"] == "disponible"
    assert data["competences"] == [
        {"id": soudure["id"], "nom": "Soudure", "niveau": "intermediaire"},
        {"id": hydraulique["id"], "nom": "Hydraulique", "niveau": "intermediaire"},
    ]
    assert data["occurred_at"]


async def test_competences_with_levels(
    client: httpx.AsyncClient, manager: Headers, known_user: Callable[..., Any], make_competence: Make
) -> None:
    c = await make_competence()
    body = {"user_id": await known_user(), "competences": [{"id": c["id"], "niveau": "expert"}]}
    response = await client.post("/api/v1/techniciens", json=body, headers=manager)
    assert response.status_code == 201
    assert response.json()["competences"][0]["niveau"] == "expert"


@pytest.mark.parametrize("role", ["client", "responsable", "admin"])
async def test_a_user_whose_role_is_not_technicien_is_a_400(
    client: httpx.AsyncClient, manager: Headers, known_user: Callable[..., Any], role: str
) -> None:
    user_id = await known_user(role=role, username="notatech")
    response = await client.post("/api/v1/techniciens", json={"user_id": user_id}, headers=manager)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        f"The user 'notatech' (id {user_id}) has the role '{role}'; only a user with the role 'technicien' "
        "can have a technician profile."
    )


async def test_a_deactivated_user_gets_no_profile(
    client: httpx.AsyncClient, manager: Headers, known_user: Callable[..., Any]
) -> None:
    user_id = await known_user(is_active=False)
    response = await client.post("/api/v1/techniciens", json={"user_id": user_id}, headers=manager)
    assert response.status_code == 400
    assert "deactivated" in response.json()["detail"]


async def test_a_second_profile_for_the_same_user_is_a_409(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech
) -> None:
    tech = await make_technicien()
    response = await client.post("/api/v1/techniciens", json={"user_id": tech.user_id}, headers=manager)
    assert response.status_code == 409
    assert response.json()["detail"].endswith(f"already has a technician profile, id {tech.id}.")
    assert response.json()["technicien_id"] == tech.id


async def test_unknown_competences_are_a_422(
    client: httpx.AsyncClient, manager: Headers, known_user: Callable[..., Any]
) -> None:
    body = {"user_id": await known_user(), "competences_ids": [987654]}
    response = await client.post("/api/v1/techniciens", json=body, headers=manager)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "competences", "message": "unknown competence id 987654"}]


async def test_competences_ids_and_competences_together_are_refused(
    client: httpx.AsyncClient, manager: Headers, known_user: Callable[..., Any], make_competence: Make
) -> None:
    c = await make_competence()
    body = {"user_id": await known_user(), "competences_ids": [c["id"]], "competences": [{"id": c["id"]}]}
    assert (await client.post("/api/v1/techniciens", json=body, headers=manager)).status_code == 422


async def test_a_technician_sees_only_its_own_profile(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech
) -> None:
    me, other = await make_technicien(), await make_technicien()
    own = await client.get(f"/api/v1/techniciens/{me.id}", headers=me.headers)
    assert own.status_code == 200 and own.json()["user"]["id"] == me.user_id
    assert (await client.get("/api/v1/techniciens/me", headers=me.headers)).json()["id"] == me.id
    hidden = await client.get(f"/api/v1/techniciens/{other.id}", headers=me.headers)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == f"No technician with id {other.id}."
    listing = await client.get("/api/v1/techniciens", headers=me.headers)
    assert [t["id"] for t in listing.json()] == [me.id] and listing.headers["x-total-count"] == "1"
    everyone = await client.get("/api/v1/techniciens", headers=manager, params={"limit": 500})
    assert {me.id, other.id} <= {t["id"] for t in everyone.json()}


async def test_a_technician_edits_only_its_own_disponibilite(
    client: httpx.AsyncClient, make_technicien: MakeTech, db_session: AsyncSession
) -> None:
    me, other = await make_technicien(equipe="A"), await make_technicien()
    ok = await client.put(f"/api/v1/techniciens/{me.id}", json={"disponibilite": "conge"}, headers=me.headers)
    assert ok.status_code == 200 and ok.json()["disponibilite"] == "conge" and ok.json()["version"] == 2
    refused = await client.put(
        f"/api/v1/techniciens/{me.id}", json={"disponibilite": "disponible", "equipe": "B"}, headers=me.headers
    )
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "A technician may only change its own disponibilite; equipe can only be changed by a manager."
    )
    assert (
        await client.put(f"/api/v1/techniciens/{other.id}", json={"disponibilite": "conge"}, headers=me.headers)
    ).status_code == 404
    assert (await client.delete(f"/api/v1/techniciens/{me.id}", headers=me.headers)).status_code == 403
    events = await technicien_events(db_session, me.id)
    assert [(e["type"], e["data"]["version"], e["data"]["disponibilite"]) for e in events] == [
        ("planning.technicien.created.v1", 1, "disponible"),
        ("planning.technicien.updated.v1", 2, "conge"),
    ]


async def test_a_manager_edits_every_field_and_replaces_competences(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, make_competence: Make
) -> None:
    a, b = await make_competence(), await make_competence()
    tech = await make_technicien(competences_ids=[a["id"]])
    body = {
        "equipe": "Équipe Sud",
        "zone": "Agadir",
        "disponibilite": "formation",
        "competences": [{"id": b["id"], "niveau": "avance"}],
    }
    response = await client.put(f"/api/v1/techniciens/{tech.id}", json=body, headers=manager)
    assert response.status_code == 200, response.text
    got = response.json()
    assert (got["equipe"], got["zone"], got["disponibilite"]) == ("Équipe Sud", "Agadir", "formation")
    assert [(c["id"], c["niveau"]) for c in got["competences"]] == [(b["id"], "avance")]
    cleared = await client.put(
        f"/api/v1/techniciens/{tech.id}", json={"zone": None, "competences_ids": []}, headers=manager
    )
    assert cleared.json()["zone"] is None and cleared.json()["competences"] == []
    same = await client.put(f"/api/v1/techniciens/{tech.id}", json={"equipe": "Équipe Sud"}, headers=manager)
    assert same.json()["version"] == cleared.json()["version"]  # no change, no new version


async def test_delete_is_a_soft_delete_and_put_reactivates(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, db_session: AsyncSession
) -> None:
    tech = await make_technicien()
    assert (await client.delete(f"/api/v1/techniciens/{tech.id}", headers=manager)).status_code == 204
    assert (await client.delete(f"/api/v1/techniciens/{tech.id}", headers=manager)).status_code == 204  # idempotent
    gone = await client.get(f"/api/v1/techniciens/{tech.id}", headers=manager)
    assert gone.status_code == 200 and gone.json()["is_active"] is False
    again = await client.post("/api/v1/techniciens", json={"user_id": tech.user_id}, headers=manager)
    assert again.status_code == 409 and "reactivate it" in again.json()["detail"]
    active = await client.get("/api/v1/techniciens", headers=manager, params={"is_active": "true", "limit": 500})
    assert tech.id not in {t["id"] for t in active.json()}
    back = await client.put(f"/api/v1/techniciens/{tech.id}", json={"is_active": True}, headers=manager)
    assert back.json()["is_active"] is True
    events = await technicien_events(db_session, tech.id)
    assert [(e["type"], e["data"]["version"], e["data"]["is_active"]) for e in events] == [
        ("planning.technicien.created.v1", 1, True),
        ("planning.technicien.deleted.v1", 2, False),
        ("planning.technicien.updated.v1", 3, True),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/techniciens"),
        ("GET", "/api/v1/techniciens/1"),
        ("PUT", "/api/v1/techniciens/1"),
        ("GET", "/api/v1/techniciens/competences"),
        ("GET", "/api/v1/techniciens/me"),
        ("GET", "/api/v1/techniciens/1/ical-token"),
        ("GET", "/api/v1/planning"),
        ("GET", "/api/v1/planning/1"),
        ("GET", "/api/v1/planning/calendrier"),
    ],
)
async def test_client_users_see_no_technician_data(
    client: httpx.AsyncClient, client_user: Headers, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=client_user, json={} if method == "PUT" else None)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/techniciens", {"user_id": 1}),
        ("DELETE", "/api/v1/techniciens/1", None),
        ("POST", "/api/v1/techniciens/competences", {"nom": "x"}),
        ("PUT", "/api/v1/techniciens/competences/1", {"nom": "x"}),
        ("DELETE", "/api/v1/techniciens/competences/1", None),
        ("GET", "/api/v1/techniciens/recommandation", None),
        ("POST", "/api/v1/planning", {"equipement_id": 1, "frequence": "mensuel"}),
        ("PUT", "/api/v1/planning/1", {}),
        ("DELETE", "/api/v1/planning/1", None),
        ("PATCH", "/api/v1/planning/1/dates?nouvelle_date=2026-01-01", None),
    ],
)
async def test_technicians_cannot_manage(
    client: httpx.AsyncClient, auth_headers: Callable[..., Headers], method: str, path: str, body: Any
) -> None:
    response = await client.request(method, path, headers=auth_headers("technicien", user_id=4242), json=body)
    assert response.status_code == 403


async def test_no_token_is_a_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/techniciens")).status_code == 401


# --- competences --------------------------------------------------------------------------------


async def test_competences_route_is_not_captured_by_the_technician_id(
    client: httpx.AsyncClient, manager: Headers, make_competence: Make, make_technicien: MakeTech
) -> None:
    made = await make_competence(nom="Électricité", domaine="électrique", description="Habilitation B2V")
    listing = await client.get("/api/v1/techniciens/competences/", headers=manager, params={"limit": 500})
    assert listing.status_code == 200
    assert made in listing.json()
    tech = await make_technicien()
    assert (await client.get("/api/v1/techniciens/competences", headers=tech.headers)).status_code == 200
    one = await client.get(f"/api/v1/techniciens/competences/{made['id']}", headers=tech.headers)
    assert one.json()["description"] == "Habilitation B2V"
    found = await client.get("/api/v1/techniciens/competences", headers=manager, params={"q": "b2v"})
    assert [c["id"] for c in found.json()] == [made["id"]]


async def test_competence_names_are_unique_regardless_of_case(
    client: httpx.AsyncClient, manager: Headers, make_competence: Make
) -> None:
    made = await make_competence(nom="Pneumatique")
    response = await client.post("/api/v1/techniciens/competences", json={"nom": "PNEUMATIQUE"}, headers=manager)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"A competence named 'Pneumatique' already exists (id {made['id']}); choose another name."
    )
    other = await make_competence(nom="Froid")
    rename = await client.put(
        f"/api/v1/techniciens/competences/{other['id']}", json={"nom": "pneumatique"}, headers=manager
    )
    assert rename.status_code == 409


async def test_renaming_a_competence_republishes_its_holders(
    client: httpx.AsyncClient,
    manager: Headers,
    make_competence: Make,
    make_technicien: MakeTech,
    db_session: AsyncSession,
) -> None:
    c = await make_competence(nom="Vannes")
    tech = await make_technicien(competences_ids=[c["id"]])
    renamed = await client.put(
        f"/api/v1/techniciens/competences/{c['id']}", json={"nom": "Robinetterie"}, headers=manager
    )
    assert renamed.status_code == 200 and renamed.json()["nom"] == "Robinetterie"
    last = (await technicien_events(db_session, tech.id))[-1]
    assert last["type"] == "planning.technicien.updated.v1" and last["data"]["version"] == 2
    assert last["data"]["competences"][0]["nom"] == "Robinetterie"


async def test_a_held_competence_cannot_be_deleted(
    client: httpx.AsyncClient, manager: Headers, make_competence: Make, make_technicien: MakeTech
) -> None:
    held, free = await make_competence(nom="Levage"), await make_competence()
    await make_technicien(competences_ids=[held["id"]])
    refused = await client.delete(f"/api/v1/techniciens/competences/{held['id']}", headers=manager)
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "The competence 'Levage' is held by 1 technician(s); remove it from their profiles first."
    )
    assert (await client.delete(f"/api/v1/techniciens/competences/{free['id']}", headers=manager)).status_code == 204
    assert (await client.get(f"/api/v1/techniciens/competences/{free['id']}", headers=manager)).status_code == 404


# --- users learnt from auth's events ------------------------------------------------------------


async def test_a_renamed_user_is_republished_and_shown(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, deliver: Deliver, db_session: AsyncSession
) -> None:
    tech = await make_technicien()
    renamed = user_data(tech.user_id, full_name="Nadia Benali")
    assert await deliver("auth.user.updated.v1", renamed)
    shown = await client.get(f"/api/v1/techniciens/{tech.id}", headers=manager)
    assert shown.json()["user"]["full_name"] == "Nadia Benali"
    last = (await technicien_events(db_session, tech.id))[-1]
    assert last["type"] == "planning.technicien.updated.v1" and last["data"]["full_name"] == "Nadia Benali"
    # A password change (same name and address) publishes nothing new.
    count = len(await technicien_events(db_session, tech.id))
    await deliver("auth.user.updated.v1", {**renamed, "token_version": 1, "changed": ["password"]})
    assert len(await technicien_events(db_session, tech.id)) == count


async def test_an_older_user_event_arriving_late_is_ignored(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, deliver: Deliver
) -> None:
    from datetime import UTC, datetime, timedelta

    tech = await make_technicien()
    later = datetime.now(UTC) + timedelta(minutes=5)
    await deliver("auth.user.deactivated.v1", user_data(tech.user_id, is_active=False), time=later)
    await deliver("auth.user.updated.v1", user_data(tech.user_id, full_name="Old"), time=later - timedelta(minutes=1))
    user = (await client.get(f"/api/v1/techniciens/{tech.id}", headers=manager)).json()["user"]
    assert user["is_active"] is False and user["full_name"] != "Old"
