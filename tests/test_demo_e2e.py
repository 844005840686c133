"""`make demo` end to end: the loader (deploy/local/demo.py) run as a program against the real suite, at a
small scale; what it loaded is then checked through the gateway, and a second run finds it complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from mif_auth.testing import PASSWORD
from tests.support import ADMIN_EMAIL, Suite, wait_for

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).resolve().parents[1] / "deploy" / "local" / "demo.py"
STATUTS = ("ouverte", "affectee", "en_cours", "en_attente", "cloturee", "annulee", "archivee")
DEMO_PASSWORD = "Demo-e2e-2026!"  # the demo accounts' password (MIF_DEMO_PASSWORD)
# The demo's meters: hourly readings over 28 days (deploy/local/demo_meters.py).
READINGS_PER_METER = 28 * 24
METER_COUNTS = ("meters", "counters", "gauges", "readings", "usage plans", "threshold rules", "checklists")
# Small enough to load in seconds, large enough for every statut (the first seven walk to each in turn).
SMALL = ["--managers", "1", "--clients", "2", "--technicians", "2", "--equipment", "8", "--interventions", "30"]


def run_demo(gateway: str, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MIF_GATEWAY_URL": gateway,
        "MIF_ADMIN_EMAIL": ADMIN_EMAIL,
        "MIF_ADMIN_PASSWORD": password,
        "MIF_DEMO_PASSWORD": DEMO_PASSWORD,
        "COLUMNS": "120",
    }
    return subprocess.run(
        [sys.executable, str(DEMO), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def total(http: httpx.Client, path: str, headers: dict[str, str], **params: Any) -> int:
    response = http.get(path, params={**params, "limit": 1}, headers=headers)
    assert response.status_code == 200, response.text
    return int(response.headers["x-total-count"])


def test_demo_loads_a_coherent_data_set_and_a_second_run_changes_nothing(
    suite: Suite, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    first = run_demo(suite.url, *SMALL, "--report", str(tmp_path / "first.json"))
    print(first.stdout)  # shown when the test fails: the loader's phases and their times
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads((tmp_path / "first.json").read_text())
    assert report["already_loaded"] is False
    assert report["present"] == {
        "managers": 1,
        "client organisations": 2,
        "client users": 2,
        "technicians": 2,
        "equipment": 8,
        "preventive plans": report["present"]["preventive plans"],
        "interventions": 30,
    }
    assert report["present"]["preventive plans"] > 0

    with suite.client() as http:
        clients = report["client_ids"]
        for client_id in clients:
            assert http.get(f"/api/v1/clients/{client_id}", headers=admin_headers).status_code == 200
        assert sum(total(http, "/api/v1/equipements", admin_headers, client_id=c) for c in clients) == 8

        for technicien_id in report["technicien_ids"]:
            profile = http.get(f"/api/v1/techniciens/{technicien_id}", headers=admin_headers).json()
            assert profile["competences"], profile
            assert profile["equipe"] and profile["zone"]

        plans = http.get("/api/v1/planning", params={"limit": 500}, headers=admin_headers).json()
        ours = [p for p in plans if p["equipement_id"] in set(report["equipement_ids"])]
        calendar = [p for p in ours if p["declencheur"] == "calendrier"]
        assert len(calendar) == report["present"]["preventive plans"]

        # Every statut of the workflow was reached, through the API's own filter.
        by_statut = {
            s: sum(total(http, "/api/v1/interventions", admin_headers, client_id=c, statut=s) for c in clients)
            for s in STATUTS
        }
        assert all(by_statut.values()), by_statut
        assert sum(by_statut.values()) == 30
        assert by_statut == report["statuts"]

        # The walk was made by the people allowed to: a started intervention's history shows its technician.
        started = (
            http.get(
                "/api/v1/interventions", params={"statut": "en_cours", "client_id": clients[0]}, headers=admin_headers
            ).json()
            or http.get(
                "/api/v1/interventions", params={"statut": "en_cours", "client_id": clients[1]}, headers=admin_headers
            ).json()
        )
        historique = http.get(f"/api/v1/interventions/{started[0]['id']}/historique", headers=admin_headers).json()
        start = next(h for h in historique if h["statut"] == "en_cours")
        technician_user = http.get(f"/api/v1/techniciens/{started[0]['technicien_id']}", headers=admin_headers).json()
        assert start["user_id"] == technician_user["user_id"]

        # A client user of the demo signs in with the demo password and sees its organisation's work only.
        client_user = report["logins"]["client"][0]
        login = http.post("/api/v1/auth/login", data={"username": client_user, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        client_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        mine = total(http, "/api/v1/interventions", client_headers)
        assert mine == total(http, "/api/v1/interventions", admin_headers, client_id=clients[0])

        # Spare parts: the catalogue, stock at each location, some to reorder, parts on open interventions
        # whose cost reaches interventions through the events.
        parts = report["parts"]
        assert parts["parts"] >= 200 and parts["stock locations"] >= 4, parts
        assert total(http, "/api/v1/pieces", admin_headers) >= parts["parts"]  # other tests add parts too
        assert parts["parts to reorder"] > 0 and parts["interventions with parts"] >= 3, parts
        consumed = http.get("/api/v1/stock/mouvements", params={"type": "sortie"}, headers=admin_headers).json()
        costed = {m["intervention_id"] for m in consumed if m["intervention_id"] is not None}
        assert costed, "the demo consumes parts on started interventions"

        def cout_pieces(iid: int) -> int | None:
            return http.get(f"/api/v1/interventions/{iid}", headers=admin_headers).json().get("cout_pieces")

        wait_for(lambda: all(cout_pieces(i) for i in costed), what="the parts cost to reach interventions")

        check_meters(http, admin_headers, report, calendar)

    second = run_demo(suite.url, *SMALL, "--report", str(tmp_path / "second.json"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already loaded" in second.stdout
    again = json.loads((tmp_path / "second.json").read_text())
    assert again["already_loaded"] is True
    assert again["created"] == {}
    assert again["present"] == report["present"]
    assert again["statuts"] == report["statuts"]  # no rule fired on the demo's readings, before or after
    assert {k: again["meters"][k] for k in METER_COUNTS} == {k: report["meters"][k] for k in METER_COUNTS}


def check_meters(
    http: httpx.Client, headers: dict[str, str], report: dict[str, Any], calendar: list[dict[str, Any]]
) -> None:
    """Meters with their readings, the usage plan's forecast, the threshold rule, checklists on plans."""
    meters = report["meters"]
    assert meters["counters"] >= 2 and meters["gauges"] >= 4, meters
    assert meters["meters"] == meters["counters"] + meters["gauges"]
    assert meters["readings"] == meters["meters"] * READINGS_PER_METER
    assert (meters["usage plans"], meters["threshold rules"], meters["checklists"]) == (1, 1, 3), meters
    show = meters["showcase"]
    eid = show["equipement_id"]
    listed = http.get(f"/api/v1/equipements/{eid}/compteurs", headers=headers).json()
    assert {c["code"]: c["id"] for c in listed} == show["compteurs"]
    assert set(show["compteurs"]) == {"heures_marche", "temperature", "vibration"}
    for code, cid in show["compteurs"].items():
        # The downsampled history (by default the last 30 days) answers a bucket per day of readings.
        response = http.get(f"/api/v1/equipements/{eid}/compteurs/{cid}/releves", params={"pas": "1d"}, headers=headers)
        assert response.status_code == 200, response.text
        buckets = [b for b in response.json() if b["nombre"]]
        assert len(buckets) >= 28 and sum(b["nombre"] for b in buckets) == READINGS_PER_METER, (code, buckets)
        if code == "heures_marche":
            assert buckets[-1]["max"] - buckets[0]["min"] > 100  # weeks of 8 to 16 h working days
        if code == "vibration":
            assert max(b["max"] for b in buckets) < 7.1  # below the threshold rule: it must not fire
    assert meters["plans with a checklist"] == len(calendar) > 0
    assert all(p["checklist_id"] for p in calendar), calendar

    def usage_plan() -> dict[str, Any]:
        return http.get(f"/api/v1/planning/{show['usage_plan_id']}", headers=headers).json()

    wait_for(lambda: usage_plan()["prochaine_date_estimee"], what="the usage plan's forecast")
    plan = usage_plan()
    assert plan["declencheur"] == "usage" and plan["intervalle"] == 500
    assert plan["usage_actuel"] < plan["prochain_seuil"] and plan["derniere_date"] is None  # not crossed
    assert datetime.fromisoformat(plan["prochaine_date_estimee"]) > datetime.now(UTC)
    rule = http.get(f"/api/v1/planning/{show['threshold_rule_id']}", headers=headers).json()
    assert (rule["declencheur"], rule["operateur"], rule["seuil"], rule["duree_minutes"]) == ("seuil", ">", 7.1, 10)
    assert rule["priorite"] == "haute" and rule["episode_en_cours"] is False
    templates = {c["id"]: c for c in http.get("/api/v1/planning/checklists", headers=headers).json()}
    steps = [e for p in calendar for e in templates[p["checklist_id"]]["etapes"]]
    assert {e["type"] for e in steps} == {"verification", "mesure", "texte", "photo"}
    assert any(e["type"] == "mesure" and e["unite"] == "°C" and e["max"] is not None for e in steps)


def test_demo_explains_a_refused_admin_and_an_unreachable_gateway(suite: Suite) -> None:
    refused = run_demo(suite.url, *SMALL, password="Not-the-admin-password-1!")
    assert refused.returncode == 1
    assert "MIF_ADMIN_PASSWORD" in refused.stdout and "401" in refused.stdout

    unreachable = run_demo("http://127.0.0.1:9", *SMALL)
    assert unreachable.returncode == 1
    assert "Cannot reach the gateway at http://127.0.0.1:9" in unreachable.stdout
