"""Meters and their rules end to end (issue #17), through the gateway and real processes: auth, assets and
its MQTT ingestion worker, planning, interventions, notifications, on real PostgreSQL, RabbitMQ and the
Mosquitto broker at 127.0.0.1:1883.

Readings published over MQTT are stored; a vibration held above a threshold rule's limit for its duration
opens exactly one corrective intervention of the rule's priority and tells the manager once, and more
high readings of the same episode change nothing; a usage plan on a counter fed by one HTTP batch that
crosses twice creates one preventive intervention per crossing, and the same batch again creates nothing;
a counter reset is accepted when flagged, a lower value without the flag refused.

"Nothing more" is only worth asserting once the facts that could have made more have been through: each
check waits for a later fact that followed them through the same queues (the end of the episode seen by
planning; then the usage plan's interventions, which planning publishes after anything the earlier
readings made it publish)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import httpx
import pytest

from mif_common.testing.mqtt import MQTT_HOST, MQTT_PORT, require_broker
from tests.support import Suite, post_until_created, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]
Json = dict[str, Any]


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def publish_mqtt(topic: str, payloads: list[Json]) -> None:
    """One message per reading, QoS 1, as a site gateway would publish them."""

    async def send() -> None:
        identifier = f"mif-e2e-pub-{uuid.uuid4().hex[:12]}"
        async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, identifier=identifier) as client:
            for payload in payloads:
                await client.publish(topic, json.dumps(payload), qos=1)

    asyncio.run(send())


class Meters:
    """The manager's calls, through the gateway."""

    def __init__(self, http: httpx.Client, manager: Headers) -> None:
        self.http, self.manager = http, manager

    def equipement(self) -> Json:
        body = {"nom": unique("Pompe P-12"), "type": "pompe", "localisation": "Station de relevage"}
        created: Json = ok(self.http.post("/api/v1/equipements", json=body, headers=self.manager), 201)
        return created

    def compteur(self, equipement_id: int, code: str, unite: str) -> Json:
        body = {"code": code, "unite": unite}
        path = f"/api/v1/equipements/{equipement_id}/compteurs"
        created: Json = ok(self.http.post(path, json=body, headers=self.manager), 201)
        return created

    def releves(self, compteur: Json, **params: Any) -> list[Json]:
        path = f"/api/v1/equipements/{compteur['equipement_id']}/compteurs/{compteur['id']}/releves"
        rows: list[Json] = ok(self.http.get(path, params={"limit": 1000, **params}, headers=self.manager))
        return rows

    def post_releves(self, compteur: Json, rows: list[Json]) -> httpx.Response:
        path = f"/api/v1/equipements/{compteur['equipement_id']}/compteurs/{compteur['id']}/releves"
        return self.http.post(path, json={"releves": rows}, headers=self.manager)

    def plan(self, plan_id: int) -> Json:
        plan: Json = ok(self.http.get(f"/api/v1/planning/{plan_id}", headers=self.manager))
        return plan

    def interventions(self, **filters: Any) -> list[Json]:
        params = {"limit": 100, **filters}
        rows: list[Json] = ok(self.http.get("/api/v1/interventions", params=params, headers=self.manager))
        return rows

    def notifications(self) -> list[Json]:
        params = {"limit": 100}
        rows: list[Json] = ok(self.http.get("/api/v1/notifications/user/me", params=params, headers=self.manager))
        return rows


def test_mqtt_readings_a_threshold_episode_and_a_usage_plan_crossing_twice(
    suite: Suite, create_user: Callable[..., Any]
) -> None:
    require_broker()
    assert suite.assets_mqtt is not None  # started whenever a broker answers
    manager = create_user("responsable")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with suite.client() as http:
        m = Meters(http, manager["headers"])
        # notifications knows the manager (its welcome) before any rule can tell managers anything.
        wait_for(m.notifications, what="the manager's welcome notification", interval=0.2)
        equipement = m.equipement()
        eid = equipement["id"]

        # --- a vibration threshold rule, fed over MQTT ------------------------------------------
        gauge = m.compteur(eid, "vibration", "mm/s")
        assert (gauge["nature"], gauge["unite"]) == ("jauge", "mm/s")
        rule = post_until_created(  # planning learns of the meter from assets' events
            suite,
            manager["headers"],
            "/api/v1/planning",
            {
                "equipement_id": eid,
                "declencheur": "seuil",
                "compteur_id": gauge["id"],
                "operateur": ">",
                "seuil": 7.1,
                "duree_minutes": 10,
                "priorite": "haute",
            },
        )
        assert rule["declencheur"] == "seuil" and rule["episode_en_cours"] is False

        topic = f"mif/equipements/{eid}/vibration"
        start = now - timedelta(minutes=40)
        # Normal, then above 7.1 from minute 2 to minute 14: 12 minutes beyond, across the 10 of the rule.
        first = [
            {"valeur": 4.0 if i < 2 else 8.2 + i / 100, "horodatage": iso(start + timedelta(minutes=i))}
            for i in range(15)
        ]
        publish_mqtt(topic, first)

        def stored_readings(count: int) -> list[Json]:
            rows = m.releves(gauge)
            return rows if len(rows) == count else []

        stored = wait_for(lambda: stored_readings(len(first)), what="the MQTT readings stored", interval=0.2)
        assert [r["valeur"] for r in stored] == [p["valeur"] for p in first]
        assert {r["source"] for r in stored} == {"mqtt"}
        assert stored[0]["horodatage"] == first[0]["horodatage"]

        def corrective() -> list[Json]:
            return m.interventions(equipement_id=eid, type="corrective")

        [opened] = wait_for(corrective, what="the rule's corrective intervention", interval=0.2)
        assert opened["priorite"] == "haute" and opened["planning_id"] == rule["id"]
        assert opened["statut"] == "ouverte"

        def alerts() -> list[Json]:
            return [n for n in m.notifications() if f"règle n°{rule['id']}" in n["contenu"]]

        [alert] = wait_for(alerts, what="the managers' notification of the triggered rule", interval=0.2)
        assert alert["titre"].startswith("Alerte") and "vibration" in alert["contenu"]
        assert m.plan(rule["id"])["episode_en_cours"] is True

        # More high readings: the same episode. Then one back to normal, which ends it: once planning shows
        # the episode over, it has evaluated the high ones too (a meter's batches reach it in order).
        more = [{"valeur": 9.5, "horodatage": iso(start + timedelta(minutes=i))} for i in range(15, 30)]
        publish_mqtt(topic, more)
        wait_for(lambda: stored_readings(len(first) + len(more)), what="the further readings stored", interval=0.2)
        publish_mqtt(topic, [{"valeur": 5.0, "horodatage": iso(start + timedelta(minutes=30))}])
        wait_for(
            lambda: m.plan(rule["id"])["episode_en_cours"] is False,
            what="planning to see the episode end",
            interval=0.2,
        )

        # --- a usage plan on a counter, fed by HTTP batches --------------------------------------
        counter = m.compteur(eid, "heures_marche", "h")
        assert counter["nature"] == "compteur"
        plan = post_until_created(
            suite,
            manager["headers"],
            "/api/v1/planning",
            {"equipement_id": eid, "declencheur": "usage", "compteur_id": counter["id"], "intervalle": 500},
        )
        assert plan["declencheur"] == "usage" and plan["intervalle"] == 500
        t = now - timedelta(minutes=30)
        batch = [
            {"horodatage": iso(t), "valeur": 0},
            {"horodatage": iso(t + timedelta(minutes=5)), "valeur": 420},
            {"horodatage": iso(t + timedelta(minutes=10)), "valeur": 610},  # crosses 500
            {"horodatage": iso(t + timedelta(minutes=15)), "valeur": 1020},  # crosses 1000
        ]
        assert ok(m.post_releves(counter, batch), 201)["acceptes"] == 4

        def preventive() -> list[Json]:
            rows = m.interventions(planning_id=plan["id"])
            return rows if len(rows) >= 2 else []

        crossings = wait_for(preventive, what="one preventive intervention per crossing", interval=0.2)
        assert len(crossings) == 2, crossings
        assert {i["type"] for i in crossings} == {"preventive"}
        assert {i["equipement_id"] for i in crossings} == {eid}
        state = m.plan(plan["id"])
        assert (state["usage_actuel"], state["prochain_seuil"]) == (1020, 1500)

        # The same batch again: every reading a duplicate, nothing new anywhere.
        again = ok(m.post_releves(counter, batch), 201)
        assert (again["acceptes"], again["doublons"]) == (0, 4)

        # A reset, flagged, is accepted (and counts nothing); a lower value without the flag is refused.
        reset = [
            {"horodatage": iso(t + timedelta(minutes=20)), "valeur": 3, "remise_a_zero": True},
            {"horodatage": iso(t + timedelta(minutes=25)), "valeur": 28},
        ]
        assert ok(m.post_releves(counter, reset), 201)["acceptes"] == 2
        wait_for(
            lambda: m.plan(plan["id"])["usage_actuel"] == 1045, what="planning to count past the reset", interval=0.2
        )
        refused = m.post_releves(counter, [{"horodatage": iso(t + timedelta(minutes=28)), "valeur": 12}])
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "remise_a_zero" in refused.json()["detail"]
        assert [r["valeur"] for r in m.releves(counter)] == [0, 420, 610, 1020, 3, 28]

        # Everything before has been through planning and interventions (the usage crossings came after it):
        # still one corrective intervention, one notification, two preventive interventions.
        assert len(corrective()) == 1
        assert len(alerts()) == 1
        assert len(m.interventions(planning_id=plan["id"])) == 2
        assert len(m.interventions(equipement_id=eid)) == 3
