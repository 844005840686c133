"""Creating and reading interventions: the contract's fields, defaults (SLA, urgence), the equipment and
technician replicas with the read-through to assets, clients on their own equipment, field edits,
ETag/If-Match and Idempotency-Key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import InProcessAssets
from mif_interventions.testing import CONTRACT_FIELDS, MANAGER_ID, World, new_id, outbox_envelopes

pytestmark = pytest.mark.usefixtures("db_session")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def count(db_session: AsyncSession, sql: str, **params: Any) -> int:
    return int(await db_session.scalar(text(sql), params) or 0)


async def test_manager_creates_an_intervention_per_the_contract(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    org = new_id()
    equipement_id = await world.equipement(client_id=org, nom="Compresseur GA37")
    tech = await world.technicien(full_name="Karim Benali")
    before = datetime.now(UTC)
    response = await client.post(
        "/api/v1/interventions/",
        json={
            "titre": "Fuite d'huile compresseur",
            "description": "Fuite au niveau du carter",
            "type": "corrective",
            "priorite": "haute",
            "technicien_id": tech.id,
            "equipement_id": equipement_id,
            "duree_estimee": 90,
            "cout_estime": 150000,
        },
        headers=world.manager,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/interventions/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["statut"] == "affectee" and body["technicien_id"] == tech.id
    assert body["client_id"] == org  # derived from the equipment
    assert body["technicien"] == {"id": tech.id, "full_name": "Karim Benali"}
    assert body["equipement"] == {"id": equipement_id, "nom": "Compresseur GA37"}
    assert body["created_by"] == MANAGER_ID and body["version"] == 1 and body["en_retard"] is False
    assert parse(body["date_affectation"]) >= before
    # haute: 24 h SLA from creation
    assert parse(body["date_limite"]) - parse(body["date_creation"]) == timedelta(hours=24)
    assert (await client.get(f"/api/v1/interventions/{body['id']}", headers=world.manager)).json() == body

    [event] = await outbox_envelopes(db_session, intervention_id=body["id"])
    assert event["type"] == "interventions.intervention.created.v1" and event["subject"] == str(body["id"])
    assert set(event["data"]) == CONTRACT_FIELDS
    assert event["data"]["statut"] == "affectee" and event["data"]["previous_statut"] is None
    assert event["data"]["actor_id"] == MANAGER_ID and event["data"]["client_id"] == org
    history = (await client.get(f"/api/v1/interventions/{body['id']}/historique", headers=world.manager)).json()
    assert [h["action"] for h in history] == ["creation"]
    assert history[0]["user_id"] == MANAGER_ID and history[0]["ip"] == "203.0.113.7"
    assert history[0]["apres"]["titre"] == "Fuite d'huile compresseur"


@pytest.mark.parametrize(
    ("fields", "priorite", "hours"),
    [
        ({}, "normale", 72),
        ({"priorite": "urgente"}, "urgente", 2),
        ({"priorite": "basse"}, "basse", 168),
        ({"priorite": "programmee"}, "programmee", None),
        ({"priorite": "basse", "urgence": True}, "urgente", 2),  # urgence forces urgente
    ],
)
async def test_priority_defaults_and_sla_deadline(
    world: World, fields: dict[str, Any], priorite: str, hours: int | None
) -> None:
    body = await world.intervention(**fields)
    assert body["statut"] == "ouverte" and body["priorite"] == priorite
    assert body["urgence"] is fields.get("urgence", False)
    if hours is None:
        assert body["date_limite"] is None
    else:
        assert parse(body["date_limite"]) - parse(body["date_creation"]) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [("high", "haute"), ("medium", "normale"), ("low", "basse"), ("HIGH", "haute"), ("urgent", "urgente")],
)
async def test_the_frontends_english_priorities_are_answered_canonically(
    world: World, client: httpx.AsyncClient, sent: str, canonical: str
) -> None:
    created = await world.intervention(priorite=sent)
    assert created["priorite"] == canonical
    edited = await client.patch(
        f"/api/v1/interventions/{created['id']}", json={"priorite": sent}, headers=world.manager
    )
    assert edited.status_code == 200 and edited.json()["priorite"] == canonical
    listed = await client.get(
        "/api/v1/interventions",
        params={"priorite": sent, "equipement_id": created["equipement_id"]},
        headers=world.manager,
    )
    assert [row["id"] for row in listed.json()] == [created["id"]]
    unknown = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "priorite": "extreme", "equipement_id": created["equipement_id"]},
        headers=world.manager,
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "priorite"


async def test_an_explicit_deadline_is_kept_and_must_be_in_the_future(world: World, client: httpx.AsyncClient) -> None:
    deadline = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    body = await world.intervention(date_limite=deadline.isoformat())
    assert parse(body["date_limite"]) == deadline
    past = await client.post(
        "/api/v1/interventions",
        json={
            "titre": "x",
            "type": "diagnostic",
            "equipement_id": body["equipement_id"],
            "date_limite": "2020-01-01T00:00:00Z",
        },
        headers=world.manager,
    )
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "date_limite"


async def test_an_unknown_or_inactive_technician_is_a_422_naming_it(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    equipement_id = await world.equipement()
    inactive = await world.technicien(is_active=False)
    cases = [
        (55555, "Technician 55555 is not an active technician."),
        (inactive.id, f"Technician {inactive.id} is not an active technician."),
    ]
    for technicien_id, detail in cases:
        response = await client.post(
            "/api/v1/interventions",
            json={"titre": "x", "type": "corrective", "equipement_id": equipement_id, "technicien_id": technicien_id},
            headers=world.manager,
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == detail
        assert response.json()["errors"] == [{"field": "technicien_id", "message": "unknown or inactive technician"}]
    assert await count(db_session, "SELECT count(*) FROM intervention WHERE equipement_id = :e", e=equipement_id) == 0


async def test_retired_equipment_takes_no_new_intervention(world: World, client: httpx.AsyncClient) -> None:
    equipement_id = await world.equipement(statut="retire")
    response = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": equipement_id},
        headers=world.manager,
    )
    assert response.status_code == 422 and "retired" in response.json()["detail"]


async def test_creation_never_takes_another_statut(world: World, client: httpx.AsyncClient) -> None:
    equipement_id = await world.equipement()
    ok = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": equipement_id, "statut": "ouverte"},
        headers=world.manager,
    )
    assert ok.status_code == 201
    refused = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": equipement_id, "statut": "en_cours"},
        headers=world.manager,
    )
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "statut", "message": "must be 'ouverte' or omitted"}]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"titre": ""}, "titre"),
        ({"titre": "x" * 256}, "titre"),
        ({"titre": "a\nb"}, "titre"),
        ({"type": "curative"}, "type"),
        ({"type": None}, "type"),
        ({"priorite": "critique"}, "priorite"),
        ({"urgence": "peut-être"}, "urgence"),
        ({"equipement_id": 0}, "equipement_id"),
        ({"equipement_id": 2**63}, "equipement_id"),
        ({"technicien_id": -1}, "technicien_id"),
        ({"date_limite": "2030-01-01T00:00:00"}, "date_limite"),  # no time zone
        ({"duree_estimee": -5}, "duree_estimee"),
        ({"cout_estime": 1.5}, "cout_estime"),
        ({"statut": "cassee"}, "statut"),
        ({"id": 3}, "id"),
    ],
)
async def test_validation_errors_name_the_field(
    world: World, client: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    body = {"titre": "Panne", "type": "corrective", "equipement_id": 1, **fields}
    response = await client.post("/api/v1/interventions", json=body, headers=world.manager)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_roles_that_may_not_create(world: World, client: httpx.AsyncClient) -> None:
    tech = await world.technicien()
    equipement_id = await world.equipement()
    response = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": equipement_id},
        headers=tech.headers,
    )
    assert response.status_code == 403
    assert (await client.post("/api/v1/interventions", json={}, headers={})).status_code == 401


async def test_a_client_user_requests_on_its_own_equipment_only(world: World, client: httpx.AsyncClient) -> None:
    org_a, org_b = new_id(), new_id()
    mine = await world.equipement(client_id=org_a)
    theirs = await world.equipement(client_id=org_b)
    user_a = world.client_user(org_a)
    created = await world.intervention(headers=user_a, equipement_id=mine, urgence=True)
    assert created["client_id"] == org_a and created["priorite"] == "urgente"
    refused = await client.post(
        "/api/v1/interventions", json={"titre": "x", "type": "corrective", "equipement_id": theirs}, headers=user_a
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == f"Equipment {theirs} does not exist."  # as if it did not exist
    tech = await world.technicien()
    assigning = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": mine, "technicien_id": tech.id},
        headers=user_a,
    )
    assert assigning.status_code == 403


# --- read-through to assets -------------------------------------------------------------------------


async def test_a_replica_miss_asks_assets_once_as_the_caller_and_caches_it(
    world: World, client: httpx.AsyncClient, assets: InProcessAssets, db_session: AsyncSession, app: FastAPI
) -> None:
    async with assets.client() as to_assets:
        org = (
            await to_assets.post("/api/v1/clients", json={"nom_entreprise": f"Org {new_id()}"}, headers=world.manager)
        ).json()
        other = (
            await to_assets.post("/api/v1/clients", json={"nom_entreprise": f"Org {new_id()}"}, headers=world.manager)
        ).json()
        made = await to_assets.post(
            "/api/v1/equipements",
            json={"nom": f"Pompe {new_id()}", "type": "pompe", "localisation": "Station", "client_id": org["id"]},
            headers=world.manager,
        )
    equipement = made.json()
    assert await count(db_session, "SELECT count(*) FROM equipement_ref WHERE id = :id", id=equipement["id"]) == 0

    # Another organisation's user: assets answers 404 to it, and so the same sentence as a missing one.
    stranger = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": equipement["id"]},
        headers=world.client_user(other["id"]),
    )
    assert stranger.status_code == 422
    assert stranger.json()["detail"] == f"Equipment {equipement['id']} does not exist."
    assert await count(db_session, "SELECT count(*) FROM equipement_ref WHERE id = :id", id=equipement["id"]) == 0

    created = await world.intervention(headers=world.client_user(org["id"]), equipement_id=equipement["id"])
    assert created["client_id"] == org["id"] and created["equipement"]["nom"] == equipement["nom"]
    cached = (
        await db_session.execute(text("SELECT * FROM equipement_ref WHERE id = :id"), {"id": equipement["id"]})
    ).one()
    assert cached.client_id == org["id"] and cached.version == 0

    # Cached: no question to assets any more (it could not answer).
    app.state.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=FastAPI()))
    again = await world.intervention(equipement_id=equipement["id"])
    assert again["equipement_id"] == equipement["id"]
    missing = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": 987654321},
        headers=world.manager,
    )
    assert missing.status_code == 422 and missing.json()["detail"] == "Equipment 987654321 does not exist."


async def test_assets_unreachable_is_a_503_and_creates_nothing(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": 424242},
        headers=world.manager,
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert await count(db_session, "SELECT count(*) FROM intervention WHERE equipement_id = 424242") == 0


# --- edits, ETag, If-Match --------------------------------------------------------------------------


async def test_patch_edits_fields_with_history_event_and_etag(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    created = await world.intervention(priorite="normale")
    iid = created["id"]
    read = await client.get(f"/api/v1/interventions/{iid}", headers=world.manager)
    assert read.headers["etag"] == '"1"'
    changed = await client.patch(
        f"/api/v1/interventions/{iid}",
        json={"titre": "Fuite importante", "urgence": True, "description": None},
        headers={**world.manager, "If-Match": '"1"', "User-Agent": "frontend/2.3"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert changed.headers["etag"] == '"2"' and body["version"] == 2
    assert body["titre"] == "Fuite importante" and body["priorite"] == "urgente" and body["urgence"] is True
    # The deadline was the SLA default: it follows the new priority.
    assert parse(body["date_limite"]) - parse(body["date_creation"]) == timedelta(hours=2)

    stale = await client.patch(
        f"/api/v1/interventions/{iid}", json={"titre": "Autre"}, headers={**world.manager, "If-Match": '"1"'}
    )
    assert stale.status_code == 412 and stale.headers["etag"] == '"2"'
    assert "changed since you read it" in stale.json()["detail"]
    weak = await client.patch(
        f"/api/v1/interventions/{iid}", json={"cout_estime": 1000}, headers={**world.manager, "If-Match": 'W/"2"'}
    )
    assert weak.status_code == 200 and weak.headers["etag"] == '"3"'
    same = await client.patch(f"/api/v1/interventions/{iid}", json={"cout_estime": 1000}, headers=world.manager)
    assert same.status_code == 200 and same.headers["etag"] == '"3"'  # nothing changed, nothing recorded

    history = (await client.get(f"/api/v1/interventions/{iid}/historique", headers=world.manager)).json()
    assert [h["action"] for h in history] == ["creation", "modification", "modification"]
    edit = history[1]
    assert edit["avant"]["titre"] == "Fuite d'huile" and edit["apres"]["titre"] == "Fuite importante"
    assert edit["avant"]["priorite"] == "normale" and edit["apres"]["priorite"] == "urgente"
    assert set(edit["apres"]) == {"titre", "urgence", "priorite", "date_limite"}
    assert edit["user_agent"] == "frontend/2.3" and edit["user_id"] == MANAGER_ID
    events = await outbox_envelopes(db_session, intervention_id=iid)
    assert [e["type"] for e in events] == [
        "interventions.intervention.created.v1",
        "interventions.intervention.updated.v1",
        "interventions.intervention.updated.v1",
    ]
    assert events[1]["data"]["priorite"] == "urgente" and events[1]["data"]["previous_statut"] is None


async def test_lowering_the_priority_clears_the_urgent_flag(world: World, client: httpx.AsyncClient) -> None:
    created = await world.intervention(urgence=True)
    body = (
        await client.patch(f"/api/v1/interventions/{created['id']}", json={"priorite": "basse"}, headers=world.manager)
    ).json()
    assert body["priorite"] == "basse" and body["urgence"] is False


async def test_patch_rules_by_role_and_statut(world: World, client: httpx.AsyncClient) -> None:
    tech = await world.technicien()
    created = await world.intervention(technicien_id=tech.id)
    iid = created["id"]
    ok = await client.patch(
        f"/api/v1/interventions/{iid}", json={"rapport": "Joint changé", "duree_reelle": 45}, headers=tech.headers
    )
    assert ok.status_code == 200 and ok.json()["rapport"] == "Joint changé"
    refused = await client.patch(
        f"/api/v1/interventions/{iid}", json={"titre": "x", "priorite": "basse"}, headers=tech.headers
    )
    assert refused.status_code == 403
    assert [e["field"] for e in refused.json()["errors"]] == ["priorite", "titre"]
    cleared = await client.patch(f"/api/v1/interventions/{iid}", json={"titre": None}, headers=world.manager)
    assert cleared.status_code == 422
    unknown_field = await client.patch(
        f"/api/v1/interventions/{iid}", json={"statut": "cloturee"}, headers=world.manager
    )
    assert unknown_field.status_code == 422 and unknown_field.json()["errors"][0]["field"] == "statut"
    await world.act(iid, "annuler", remarque="Doublon")
    closed = await client.patch(f"/api/v1/interventions/{iid}", json={"titre": "x"}, headers=world.manager)
    assert closed.status_code == 409 and "can no longer be edited" in closed.json()["detail"]


async def test_moving_to_another_equipment_rederives_the_client(world: World, client: httpx.AsyncClient) -> None:
    org_a, org_b = new_id(), new_id()
    created = await world.intervention(equipement_id=await world.equipement(client_id=org_a))
    target = await world.equipement(client_id=org_b, nom="Chaudière B")
    moved = await client.patch(
        f"/api/v1/interventions/{created['id']}", json={"equipement_id": target}, headers=world.manager
    )
    assert moved.status_code == 200
    assert moved.json()["client_id"] == org_b and moved.json()["equipement"] == {"id": target, "nom": "Chaudière B"}


# --- Idempotency-Key --------------------------------------------------------------------------------


async def test_the_same_idempotency_key_and_body_give_the_same_intervention(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    equipement_id = await world.equipement()
    body = {"titre": "Bruit anormal", "type": "diagnostic", "equipement_id": equipement_id}
    headers = {**world.manager, "Idempotency-Key": "req-7f3a"}
    first = await client.post("/api/v1/interventions", json=body, headers=headers)
    again = await client.post("/api/v1/interventions", json=dict(reversed(body.items())), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await count(db_session, "SELECT count(*) FROM intervention WHERE equipement_id = :e", e=equipement_id) == 1
    assert len(await outbox_envelopes(db_session, intervention_id=first.json()["id"])) == 1

    different = await client.post("/api/v1/interventions", json={**body, "titre": "Autre"}, headers=headers)
    assert different.status_code == 422
    assert "already used with a different body" in different.json()["detail"]
    # Keys belong to their user: another manager's same key is a new request.
    other = world.auth_headers("responsable", user_id=MANAGER_ID + 1)
    theirs = await client.post("/api/v1/interventions", json=body, headers={**other, "Idempotency-Key": "req-7f3a"})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]


async def test_a_failed_creation_does_not_burn_its_key(world: World, client: httpx.AsyncClient) -> None:
    headers = {**world.manager, "Idempotency-Key": "retry-me"}
    equipement_id = await world.equipement()
    tech = new_id()
    failed = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": equipement_id, "technicien_id": tech},
        headers=headers,
    )
    assert failed.status_code == 422
    fixed = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": equipement_id},
        headers=headers,
    )
    assert fixed.status_code == 201


async def test_bad_path_ids_and_unknown_interventions(world: World, client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/interventions/0", f"/api/v1/interventions/{2**63}", "/api/v1/interventions/abc"):
        assert (await client.get(path, headers=world.manager)).status_code == 422
    missing = await client.get("/api/v1/interventions/987654321", headers=world.manager)
    assert missing.status_code == 404 and missing.json()["detail"] == "No intervention with id 987654321."
