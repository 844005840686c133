"""The assets service end to end: real auth, assets and gateway processes, real PostgreSQL and RabbitMQ.

Two client organisations, each with its user; equipment per organisation; what each role may see and
do through the gateway; assets' events reaching auth's replica and RabbitMQ; an interventions event
consumed by the running assets service.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from mif_interventions.testing import intervention_data
from tests.support import Suite, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def create_organisation(suite: Suite, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"nom_entreprise": unique("Société"), **fields}
    response = httpx.post(f"{suite.url}/api/v1/clients", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def create_equipement(suite: Suite, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"nom": unique("Équipement"), "type": "compresseur", "localisation": "Hall 1", **fields}
    response = httpx.post(f"{suite.url}/api/v1/equipements/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def client_ref(suite: Suite, client_id: int) -> Any:
    async def query() -> Any:
        conn = await asyncpg.connect(suite.database.dsn)
        try:
            return await conn.fetchrow("SELECT * FROM auth.client_ref WHERE client_id = $1", client_id)
        finally:
            await conn.close()

    return asyncio.run(query())


def test_two_organisations_each_see_only_their_own(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]
) -> None:
    org_a = create_organisation(suite, admin_headers, ville="Casablanca")
    org_b = create_organisation(suite, admin_headers, ville="Agadir")
    # Created seconds ago: auth knows them from assets' events, or asks assets once.
    user_a = create_user("client", client_id=org_a["id"])
    user_b = create_user("client", client_id=org_b["id"])
    manager = create_user("responsable")
    tech = create_user("technicien")
    eq_a = create_equipement(suite, manager["headers"], client_id=org_a["id"])
    eq_b = create_equipement(suite, manager["headers"], client_id=org_b["id"])

    with suite.client() as http:
        for user, org, mine, theirs, other_org in (
            (user_a, org_a, eq_a, eq_b, org_b),
            (user_b, org_b, eq_b, eq_a, org_a),
        ):
            headers = user["headers"]
            listing = http.get("/api/v1/equipements", headers=headers)
            assert [e["id"] for e in listing.json()] == [mine["id"]]
            assert http.get(f"/api/v1/equipements/{mine['id']}", headers=headers).status_code == 200
            assert http.get(f"/api/v1/equipements/{mine['id']}/historique-statut", headers=headers).status_code == 200
            hidden = http.get(f"/api/v1/equipements/{theirs['id']}", headers=headers)
            assert hidden.status_code == 404
            assert hidden.headers["content-type"] == "application/problem+json"
            assert [c["id"] for c in http.get("/api/v1/clients/", headers=headers).json()] == [org["id"]]
            assert http.get(f"/api/v1/clients/{other_org['id']}", headers=headers).status_code == 404
            # A client user never writes.
            assert http.post("/api/v1/equipements", json={"nom": "x"}, headers=headers).status_code == 403
            assert http.put(f"/api/v1/equipements/{mine['id']}", json={}, headers=headers).status_code == 403
            assert http.delete(f"/api/v1/equipements/{mine['id']}", headers=headers).status_code == 403
            assert http.put(f"/api/v1/clients/{org['id']}", json={}, headers=headers).status_code == 403

        seen_by_tech = {e["id"] for e in http.get("/api/v1/equipements?limit=500", headers=tech["headers"]).json()}
        assert {eq_a["id"], eq_b["id"]} <= seen_by_tech
        assert http.get("/api/v1/clients", headers=tech["headers"]).status_code == 403
        me = http.get("/api/v1/auth/me", headers=user_a["headers"]).json()
        assert me["role"] == "client"


# (method, path template, body) -> expected status per role; `{client}` / `{equipement}` are existing
# rows of the calling client user's organisation.
ROUTES: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/api/v1/clients", None, {"admin": 200, "responsable": 200, "technicien": 403, "client": 200}),
    ("GET", "/api/v1/clients/{client}", None, {"admin": 200, "responsable": 200, "technicien": 403, "client": 200}),
    ("POST", "/api/v1/clients", {}, {"admin": 201, "responsable": 201, "technicien": 403, "client": 403}),
    (
        "PUT",
        "/api/v1/clients/{client}",
        {"ville": "Oujda"},
        {"admin": 200, "responsable": 200, "technicien": 403, "client": 403},
    ),
    ("GET", "/api/v1/equipements", None, {"admin": 200, "responsable": 200, "technicien": 200, "client": 200}),
    (
        "GET",
        "/api/v1/equipements/{equipement}",
        None,
        {"admin": 200, "responsable": 200, "technicien": 200, "client": 200},
    ),
    ("POST", "/api/v1/equipements", {}, {"admin": 201, "responsable": 201, "technicien": 403, "client": 403}),
    (
        "PUT",
        "/api/v1/equipements/{equipement}",
        {"criticite": "critique"},
        {"admin": 200, "responsable": 200, "technicien": 403, "client": 403},
    ),
    (
        "DELETE",
        "/api/v1/equipements/{equipement}",
        None,
        {"admin": 204, "responsable": 204, "technicien": 403, "client": 403},
    ),
    ("DELETE", "/api/v1/clients/{client}", None, {"admin": 204, "responsable": 204, "technicien": 403, "client": 403}),
]


def test_role_matrix_through_the_gateway(suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]) -> None:
    org = create_organisation(suite, admin_headers)
    callers = {
        "admin": admin_headers,
        "responsable": create_user("responsable")["headers"],
        "technicien": create_user("technicien")["headers"],
        "client": create_user("client", client_id=org["id"])["headers"],
    }
    failures = []
    with suite.client() as http:
        for method, template, body, expected in ROUTES:
            for role, headers in callers.items():
                # Fresh rows for each call, so deletions and deactivations never affect the next one.
                target_org = org if role == "client" else create_organisation(suite, admin_headers)
                equipement = create_equipement(suite, admin_headers, client_id=target_org["id"])
                path = template.format(client=target_org["id"], equipement=equipement["id"])
                payload = body
                if body == {}:  # a creation
                    payload = (
                        {"nom_entreprise": unique("Matrice")}
                        if "clients" in path
                        else {"nom": unique("Matrice"), "type": "pompe", "localisation": "Hall"}
                    )
                response = http.request(method, path, json=payload, headers=headers)
                if response.status_code != expected[role]:
                    failures.append(f"{role} {method} {path}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_validation_and_bad_input_through_the_gateway(suite: Suite, admin_headers: Headers) -> None:
    made = create_equipement(suite, admin_headers, numero_serie=unique("SN"))
    with suite.client() as http:
        duplicate = http.post(
            "/api/v1/equipements",
            json={"nom": made["nom"].upper(), "type": "x", "localisation": "y"},
            headers=admin_headers,
        )
        assert duplicate.status_code == 409
        assert duplicate.headers["content-type"] == "application/problem+json"
        assert "already exists" in duplicate.json()["detail"]
        json_headers = {**admin_headers, "content-type": "application/json"}
        malformed = http.post("/api/v1/clients", content=b'{"nom_entreprise": ', headers=json_headers)
        assert malformed.status_code == 422
        unknown = http.post("/api/v1/clients", json={"nom_entreprise": unique("X"), "id": 1}, headers=admin_headers)
        assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "id"
        huge = http.post(
            "/api/v1/equipements",
            content=json.dumps({"nom": "x" * 3_000_000}).encode(),
            headers=json_headers,
        )
        assert huge.status_code == 413
        for query in ("limit=-1", "limit=100000", "offset=-3", "statut=cassé", "sort=secret"):
            bad = http.get(f"/api/v1/equipements?{query}", headers=admin_headers)
            assert bad.status_code == 422, query
            assert bad.headers["content-type"] == "application/problem+json"
        bad_frequency = http.put(
            f"/api/v1/equipements/{made['id']}", json={"frequence_entretien": 0}, headers=admin_headers
        )
        assert bad_frequency.status_code == 422
        assert http.get(f"/api/v1/equipements/{made['id']}", headers=admin_headers).json() == made
        assert http.get("/api/v1/assets/openapi.json").status_code == 200
        combined = http.get("/openapi.json").json()["paths"]
        assert any(p.startswith("/api/v1/equipements") for p in combined)
        assert any(p.startswith("/api/v1/clients") for p in combined)


def test_client_events_feed_auths_replica(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]
) -> None:
    org = create_organisation(suite, admin_headers, nom_entreprise=unique("Répliquée"))
    row = wait_for(lambda: client_ref(suite, org["id"]), what="assets.client.created.v1 to reach auth")
    assert row["nom_entreprise"] == org["nom_entreprise"] and row["is_active"] is True

    assert httpx.delete(f"{suite.url}/api/v1/clients/{org['id']}", headers=admin_headers).status_code == 204
    wait_for(
        lambda: (ref := client_ref(suite, org["id"])) is not None and ref["is_active"] is False,
        what="assets.client.deactivated.v1 to reach auth",
    )
    refused = httpx.post(
        f"{suite.url}/api/v1/users",
        json={
            "username": unique("late").replace(" ", ""),
            "full_name": "Trop tard",
            "email": f"{uuid.uuid4().hex[:8]}@e2e.mif.ma",
            "role": "client",
            "password": "Str0ng!Passw0rd",
            "client_id": org["id"],
        },
        headers=admin_headers,
    )
    assert refused.status_code == 422
    assert "deactivated" in refused.json()["detail"]


def test_equipment_events_reach_rabbitmq_and_interventions_events_are_consumed(
    suite: Suite, admin_headers: Headers
) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        connection = await aio_pika.connect(suite.amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key="assets.equipement.#")
            made = await asyncio.to_thread(create_equipement, suite, admin_headers)
            # An intervention service's event: an urgent corrective intervention on that equipment.
            data = intervention_data(
                int(time.time_ns() % 10**12),
                "ouverte",
                equipement_id=made["id"],
                priorite="urgente",
                occurred_at=datetime.now(UTC),
            )
            event = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "/mif/interventions",
                "type": "interventions.intervention.created.v1",
                "subject": str(data["intervention_id"]),
                "time": datetime.now(UTC).isoformat(),
                "datacontenttype": "application/json",
                "data": data,
            }
            await exchange.publish(
                aio_pika.Message(json.dumps(event).encode(), content_type="application/cloudevents+json"),
                routing_key=event["type"],
            )
            seen: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(15):
                async with queue.iterator() as messages:
                    async for message in messages:
                        async with message.process():
                            body: dict[str, Any] = json.loads(message.body)
                        if body["data"]["equipement_id"] == made["id"]:
                            seen[body["type"]] = body
                        if "assets.equipement.status_changed.v1" in seen:
                            return seen["assets.equipement.created.v1"], seen["assets.equipement.status_changed.v1"]
        raise AssertionError("unreachable")

    created, changed = asyncio.run(scenario())
    assert created["source"] == "/mif/assets" and created["correlationid"]
    assert changed["data"]["statut"] == "panne" and changed["data"]["source"] == "event"
    equipement_id = created["data"]["equipement_id"]
    with suite.client() as http:
        assert http.get(f"/api/v1/equipements/{equipement_id}", headers=admin_headers).json()["statut"] == "panne"
        history = http.get(f"/api/v1/equipements/{equipement_id}/historique-statut", headers=admin_headers).json()
        assert history[-1]["source"] == "event" and history[-1]["nouveau_statut"] == "panne"
        refused = http.delete(f"/api/v1/equipements/{equipement_id}", headers=admin_headers)
        assert refused.status_code == 409
        assert "retire" in refused.json()["detail"]
