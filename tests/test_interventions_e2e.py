"""The interventions service end to end: real auth, assets, interventions and gateway processes, real
PostgreSQL and RabbitMQ. A manager opens an intervention on a client organisation's equipment; the
organisation's user sees it, another organisation's does not; the workflow's events reach assets, which
moves the equipment to `maintenance` and back to `operationnel`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mif_planning.testing import technicien_data
from tests.support import Suite, event, publish, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def test_an_intervention_through_the_gateway_scoped_and_felt_by_assets(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]
) -> None:
    manager = create_user("responsable")["headers"]
    tech_user = create_user("technicien")
    with suite.client() as http:
        org_a = http.post("/api/v1/clients", json={"nom_entreprise": unique("Cimenterie")}, headers=manager).json()
        org_b = http.post("/api/v1/clients", json={"nom_entreprise": unique("Laiterie")}, headers=manager).json()
        user_a = create_user("client", client_id=org_a["id"])["headers"]
        user_b = create_user("client", client_id=org_b["id"])["headers"]
        equipement = http.post(
            "/api/v1/equipements",
            json={"nom": unique("Broyeur"), "type": "broyeur", "localisation": "Atelier", "client_id": org_a["id"]},
            headers=manager,
        ).json()

        created = http.post(
            "/api/v1/interventions/",
            json={"titre": "Vibrations broyeur", "type": "corrective", "equipement_id": equipement["id"]},
            headers={**manager, "Idempotency-Key": f"e2e-{equipement['id']}"},
        )
        assert created.status_code == 201, created.text
        intervention = created.json()
        iid = intervention["id"]
        assert intervention["client_id"] == org_a["id"] and intervention["statut"] == "ouverte"
        assert intervention["equipement"] == {"id": equipement["id"], "nom": equipement["nom"]}
        assert created.headers["etag"] == '"1"'

        # The organisation's user sees it; another organisation's user does not even learn it exists.
        mine = http.get("/api/v1/interventions", headers=user_a)
        assert [i["id"] for i in mine.json()] == [iid] and mine.headers["x-total-count"] == "1"
        assert http.get(f"/api/v1/interventions/{iid}", headers=user_a).status_code == 200
        hidden = http.get(f"/api/v1/interventions/{iid}", headers=user_b)
        assert hidden.status_code == 404 and hidden.headers["content-type"] == "application/problem+json"
        assert http.get("/api/v1/filters/interventions", headers=user_b).json() == []
        foreign = http.post(
            "/api/v1/interventions",
            json={"titre": "x", "type": "corrective", "equipement_id": equipement["id"]},
            headers=user_b,
        )
        assert (
            foreign.status_code == 422 and foreign.json()["detail"] == f"Equipment {equipement['id']} does not exist."
        )

        # planning (not running here) announces the technician's profile; then the manager assigns it.
        technicien_id = int(time.time_ns() % 10**9)
        publish(suite, event("planning.technicien.created.v1", technicien_data(technicien_id, tech_user["id"])))

        def assign() -> httpx.Response | None:
            response = http.post(
                f"/api/v1/interventions/{iid}/affecter", json={"technicien_id": technicien_id}, headers=manager
            )
            return response if response.status_code == 200 else None

        assigned = wait_for(assign, what="planning.technicien.created.v1 to reach interventions")
        assert assigned.json()["technicien"]["id"] == technicien_id
        tech = tech_user["headers"]
        assert [i["id"] for i in http.get("/api/v1/interventions", headers=tech).json()] == [iid]

        def equipment_statut() -> str:
            return str(http.get(f"/api/v1/equipements/{equipement['id']}", headers=manager).json()["statut"])

        stale = http.post(f"/api/v1/interventions/{iid}/demarrer", headers={**tech, "If-Match": '"1"'})
        assert stale.status_code == 412
        started = http.post(f"/api/v1/interventions/{iid}/demarrer", headers={**tech, "If-Match": '"2"'})
        assert started.status_code == 200 and started.json()["statut"] == "en_cours"
        wait_for(lambda: equipment_statut() == "maintenance", what="started.v1 to put the equipment in maintenance")

        closed = http.post(
            f"/api/v1/interventions/{iid}/cloturer", json={"rapport": "Roulements remplacés"}, headers=tech
        )
        assert closed.status_code == 200 and closed.json()["statut"] == "cloturee"
        wait_for(lambda: equipment_statut() == "operationnel", what="closed.v1 to make the equipment operationnel")
        refused = http.post(f"/api/v1/interventions/{iid}/archiver", headers=tech)
        assert refused.status_code == 403

        history = http.get(f"/api/v1/interventions/{iid}/historique", headers=manager).json()
        assert [h["action"] for h in history] == ["creation", "affectation", "changement_statut", "changement_statut"]
        assert history[2]["user_id"] == tech_user["id"] and history[2]["ip"]
        assert http.get("/api/v1/dashboard/stats", headers=user_a).json()["interventions"]["terminees"] == 1
        assert http.get("/api/v1/dashboard/kpis", headers=manager).status_code == 200
        assert http.get("/api/v1/interventions/openapi.json").status_code == 200
        assert any(p.startswith("/api/v1/interventions") for p in http.get("/openapi.json").json()["paths"])
