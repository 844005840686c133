"""The inventory service end to end, through the gateway, with real auth, assets, interventions, planning,
notifications and inventory processes, real PostgreSQL and RabbitMQ: a technician's parts on their own
intervention, 20 concurrent consumptions of the last 10 units, a retried consumption counted once, the
parts cost reaching the intervention by events, and one low-stock alert per crossing, in-app and by e-mail."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from mif_notifications.testing import to_address
from mif_planning.testing import technicien_data
from tests.support import Suite, event, publish, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]
PRICE = 4_550  # centimes


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_parts_on_an_intervention_through_the_gateway(suite: Suite, create_user: Callable[..., Any]) -> None:
    manager_user = create_user("responsable")
    manager = manager_user["headers"]
    tech_user, other_tech = create_user("technicien"), create_user("technicien")
    tech = tech_user["headers"]
    with suite.client() as http:
        org = http.post("/api/v1/clients", json={"nom_entreprise": unique("Sucrerie")}, headers=manager).json()
        client = create_user("client", client_id=org["id"])["headers"]
        equipement = http.post(
            "/api/v1/equipements",
            json={"nom": unique("Pompe"), "type": "pompe", "localisation": "Station", "client_id": org["id"]},
            headers=manager,
        ).json()
        iid = http.post(
            "/api/v1/interventions/",
            json={"titre": "Fuite garniture pompe", "type": "corrective", "equipement_id": equipement["id"]},
            headers=manager,
        ).json()["id"]
        technicien_id = int(time.time_ns() % 10**9)
        publish(suite, event("planning.technicien.created.v1", technicien_data(technicien_id, tech_user["id"])))

        def assign() -> httpx.Response | None:
            response = http.post(
                f"/api/v1/interventions/{iid}/affecter", json={"technicien_id": technicien_id}, headers=manager
            )
            return response if response.status_code == 200 else None

        wait_for(assign, what="planning.technicien.created.v1 to reach interventions")
        assert http.post(f"/api/v1/interventions/{iid}/demarrer", headers=tech).status_code == 200

        piece = http.post(
            "/api/v1/pieces",
            json={
                "reference": unique("GARN"),
                "nom": "Garniture mécanique 35 mm",
                "prix_unitaire": PRICE,
                "stock_minimum": 3,
                "stock_maximum": 12,
                "types_equipement": ["pompe"],
            },
            headers=manager,
        ).json()
        store = http.post(
            "/api/v1/stock/emplacements",
            json={"code": unique("MAG"), "nom": "Magasin central Casablanca", "type": "magasin_central"},
            headers=manager,
        ).json()
        entree = http.post(
            "/api/v1/stock/mouvements",
            json={"type": "entree", "piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 11},
            headers=manager,
        )
        assert entree.status_code == 201, entree.text
        assert [
            p["id"] for p in http.get("/api/v1/pieces", params={"equipement_id": equipement["id"]}, headers=tech).json()
        ] == [piece["id"]]

        consume = f"/api/v1/stock/interventions/{iid}/consommations"
        one = {"piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 1}
        # A retried consumption (same Idempotency-Key) counts once.
        retried = [http.post(consume, json=one, headers={**tech, "Idempotency-Key": "garniture-1"}) for _ in range(2)]
        assert [r.status_code for r in retried] == [200, 200]
        assert retried[1].headers["idempotent-replayed"] == "true"
        # Another technician, a client: not theirs to move.
        assert http.post(consume, json=one, headers=other_tech["headers"]).status_code == 404
        assert http.post(consume, json=one, headers=client).status_code == 403

    # 20 concurrent consumptions of the last 10 units: exactly 10 succeed.
    def consume_one(_: int) -> int:
        return httpx.post(f"{suite.url}{consume}", json=one, headers=tech, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(consume_one, range(20)))
    assert sorted(statuses) == [200] * 10 + [409] * 10

    with suite.client() as http:
        stock = http.get("/api/v1/stock", params={"piece_id": piece["id"]}, headers=manager).json()
        assert [(s["quantite"], s["reservee"]) for s in stock] == [(0, 0)]
        ledger = http.get("/api/v1/stock/mouvements", params={"piece_id": piece["id"]}, headers=manager).json()
        assert [m["type"] for m in ledger] == ["entree"] + ["sortie"] * 11
        assert [m["apres"] for m in ledger[1:]] == list(range(10, -1, -1))

        # The cost reaches interventions through RabbitMQ: 11 garnitures at 45.50 MAD.
        def costed() -> dict[str, Any] | None:
            intervention = http.get(f"/api/v1/interventions/{iid}", headers=manager).json()
            return intervention if intervention.get("cout_pieces") == 11 * PRICE else None

        intervention = wait_for(costed, what="inventory.intervention.parts_costed.v1 to reach interventions")
        assert intervention["cout_reel"] == 11 * PRICE  # no manual cost: the parts are the known real cost
        history = http.get(f"/api/v1/interventions/{iid}/historique", headers=manager).json()
        assert any(h["action"] == "pieces" and "500,50 MAD" in h["remarque"] for h in history), history
        # The client sees the parts used on its intervention, with quantities and costs, and nothing else.
        seen = http.get(f"/api/v1/stock/interventions/{iid}/pieces", headers=client).json()
        assert seen["cout_pieces"] == 11 * PRICE and seen["lignes"][0]["consommee"] == 11
        assert http.get("/api/v1/pieces", headers=client).status_code == 403

        # Stock fell through the minimum once (3 → 0): one alert, in-app and by e-mail, for each manager.
        def alerts() -> list[dict[str, Any]]:
            listed = http.get("/api/v1/notifications", params={"limit": 500}, headers=manager).json()
            return [n for n in listed if n["type"] == "stock_bas" and piece["reference"] in n["titre"]]

        wait_for(lambda: alerts() or None, what="inventory.stock.low.v1 to reach notifications")
        message = suite.smtp.wait_for(
            lambda m: to_address(m) == manager_user["email"] and piece["reference"] in str(m["Subject"])
        )
        assert "Stock bas" in str(message["Subject"])
        time.sleep(1.0)  # anything duplicated would have arrived by now
        assert len(alerts()) == 1
        reorder = http.get("/api/v1/pieces/a-commander", headers=manager).json()
        assert next(r for r in reorder if r["piece_id"] == piece["id"])["a_commander"] == 12

        # Restocked above the minimum (re-armed), then down through it again (12 → 2): a second crossing,
        # a second alert, and only one.
        for kind, quantite in (("entree", 12), ("sortie", 10)):
            body = {"type": kind, "piece_id": piece["id"], "emplacement_id": store["id"], "quantite": quantite}
            moved = http.post("/api/v1/stock/mouvements", json=body, headers=manager)
            assert moved.status_code == 201, moved.text
        wait_for(lambda: len(alerts()) == 2 or None, what="the second crossing to reach notifications")
        time.sleep(1.0)
        assert len(alerts()) == 2
