"""The planning service end to end: real auth, assets, planning and gateway processes, real PostgreSQL
and RabbitMQ.

Users made by the admin reach planning (auth's events, or one question to auth); a manager builds the
technicians' profiles, a competence and a preventive plan on an equipment made through assets; each
role sees what it may; the scheduler running inside planning emits the due occurrence and the relay
publishes it; the technician's calendar feed works without a login."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from icalendar import Calendar

from tests.support import Suite, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def published_due_events(suite: Suite, plan_id: int) -> list[Any]:
    async def query() -> list[Any]:
        conn = await asyncpg.connect(suite.database.dsn)
        try:
            return list(
                await conn.fetch(
                    "SELECT envelope->'data' AS data, published_at FROM planning.outbox"
                    " WHERE type = 'planning.occurrence.due.v1' AND subject = $1",
                    str(plan_id),
                )
            )
        finally:
            await conn.close()

    return asyncio.run(query())


def linked_interventions(suite: Suite, plan_id: int) -> list[int]:
    async def query() -> list[int]:
        conn = await asyncpg.connect(suite.database.dsn)
        try:
            rows = await conn.fetch(
                "SELECT intervention_id FROM planning.occurrence"
                " WHERE planning_id = $1 AND intervention_id IS NOT NULL",
                plan_id,
            )
            return [r["intervention_id"] for r in rows]
        finally:
            await conn.close()

    return asyncio.run(query())


def test_technicians_plans_and_the_calendar_feed_through_the_gateway(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., Any]
) -> None:
    manager = create_user("responsable")["headers"]
    tech_user, other_user = create_user("technicien"), create_user("technicien")
    with suite.client() as http:
        organisation = http.post("/api/v1/clients", json={"nom_entreprise": unique("Sucrerie")}, headers=admin_headers)
        client_headers = create_user("client", client_id=organisation.json()["id"])["headers"]

        # The manager creates the profiles: the user comes from auth (event or question), embedded.
        competence = http.post(
            "/api/v1/techniciens/competences/",
            json={"nom": unique("Hydraulique"), "domaine": "fluides"},
            headers=manager,
        )
        assert competence.status_code == 201, competence.text
        created = http.post(
            "/api/v1/techniciens/",
            json={
                "user_id": tech_user["id"],
                "equipe": "Équipe Nord",
                "zone": "Casablanca",
                "competences": [{"id": competence.json()["id"], "niveau": "expert"}],
            },
            headers=manager,
        )
        assert created.status_code == 201, created.text
        tech = created.json()
        assert tech["user"] == {
            "id": tech_user["id"],
            "username": tech_user["username"],
            "email": tech_user["email"],
            "full_name": tech_user["full_name"],
            "is_active": True,
        }
        assert tech["competences"][0]["niveau"] == "expert"
        other = http.post("/api/v1/techniciens", json={"user_id": other_user["id"]}, headers=manager)
        assert other.status_code == 201, other.text
        admin_id = http.get("/api/v1/auth/me", headers=admin_headers).json()["id"]
        not_a_tech = http.post("/api/v1/techniciens", json={"user_id": admin_id}, headers=manager)
        assert not_a_tech.status_code == 400 and "has the role 'admin'" in not_a_tech.json()["detail"]
        duplicate = http.post("/api/v1/techniciens", json={"user_id": tech_user["id"]}, headers=manager)
        assert duplicate.status_code == 409
        listed = http.get("/api/v1/techniciens/competences", headers=tech_user["headers"])
        assert listed.status_code == 200 and competence.json()["id"] in {c["id"] for c in listed.json()}

        # A plan on an equipment made through assets, due a minute ago: the scheduler picks it up.
        equipement = http.post(
            "/api/v1/equipements",
            json={"nom": unique("Compresseur"), "type": "compresseur", "localisation": "Hall 3"},
            headers=manager,
        )
        assert equipement.status_code == 201, equipement.text
        due = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
        plan = http.post(
            "/api/v1/planning/",
            json={
                "equipement_id": equipement.json()["id"],
                "frequence": "Mensuelle",
                "prochaine_date": due.isoformat(),
                "technicien_id": tech["id"],
            },
            headers=manager,
        )
        assert plan.status_code == 201, plan.text
        assert plan.json()["frequence"] == "mensuel"
        assert plan.json()["equipement"] == {"id": equipement.json()["id"], "nom": equipement.json()["nom"]}
        plan_id = plan.json()["id"]

        # Each role sees what it may.
        me = tech_user["headers"]
        assert http.get(f"/api/v1/techniciens/{tech['id']}", headers=me).status_code == 200
        assert http.get("/api/v1/techniciens/me", headers=me).json()["id"] == tech["id"]
        assert http.get(f"/api/v1/techniciens/{other.json()['id']}", headers=me).status_code == 404
        assert [t["id"] for t in http.get("/api/v1/techniciens", headers=me).json()] == [tech["id"]]
        assert http.put(f"/api/v1/techniciens/{tech['id']}", json={"equipe": "X"}, headers=me).status_code == 403
        own = http.put(f"/api/v1/techniciens/{tech['id']}", json={"disponibilite": "formation"}, headers=me)
        assert own.status_code == 200 and own.json()["disponibilite"] == "formation"
        assert [p["id"] for p in http.get("/api/v1/planning", headers=me).json()] == [plan_id]
        for path in ("/api/v1/techniciens", f"/api/v1/techniciens/{tech['id']}", "/api/v1/planning"):
            refused = http.get(path, headers=client_headers)
            assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
        assert http.post("/api/v1/planning", json={}, headers=me).status_code == 403

        # The scheduler inside planning emits the occurrence once; the relay publishes it.
        def published() -> list[Any]:
            rows = published_due_events(suite, plan_id)
            return rows if rows and all(r["published_at"] for r in rows) else []

        rows = wait_for(published, what="the due occurrence to be emitted and published")
        assert len(rows) == 1
        # interventions turns it into one preventive intervention; its event comes back and is linked to
        # the occurrence (what overdue detection follows).
        [intervention_id] = wait_for(
            lambda: linked_interventions(suite, plan_id), what="the occurrence's intervention to be linked"
        )
        generated = http.get(f"/api/v1/interventions/{intervention_id}", headers=manager).json()
        assert generated["type"] == "preventive" and generated["titre"].startswith("Maintenance préventive - ")
        moved = http.get(f"/api/v1/planning/{plan_id}", headers=manager).json()
        assert datetime.fromisoformat(moved["derniere_date"]) == due
        assert datetime.fromisoformat(moved["prochaine_date"]) == due + timedelta(days=30)

        # The technician's calendar, and its feed URL that calendar apps fetch without a login.
        schedule = http.get("/api/v1/planning/calendrier", params={"from": due.date().isoformat()}, headers=me)
        assert schedule.status_code == 200
        assert [e["planning_id"] for e in schedule.json() if e["type"] == "occurrence"][:2] == [plan_id, plan_id]
        issued = http.post(f"/api/v1/techniciens/{tech['id']}/ical-token", headers=me)
        assert issued.status_code == 201, issued.text
        url = issued.json()["url"]
        assert url.startswith(suite.url + "/api/v1/planning/ical/")
    feed = httpx.get(url)  # no Authorization
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")
    events = list(Calendar.from_ical(feed.content).walk("VEVENT"))
    uids = {str(e["UID"]) for e in events}
    assert f"occurrence-{plan_id}-{due:%Y%m%dT%H%M%SZ}@planning.mif.ma" in uids
    assert httpx.get(suite.url + "/api/v1/planning/ical/not-a-token").status_code == 404
