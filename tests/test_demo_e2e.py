"""`make demo` end to end: the loader (deploy/local/demo.py) run as a program against the real suite, at a
small scale; what it loaded is then checked through the gateway, and a second run finds it complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from mif_auth.testing import PASSWORD
from tests.support import ADMIN_EMAIL, Suite

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).resolve().parents[1] / "deploy" / "local" / "demo.py"
STATUTS = ("ouverte", "affectee", "en_cours", "en_attente", "cloturee", "annulee", "archivee")
DEMO_PASSWORD = "Demo-e2e-2026!"  # the demo accounts' password (MIF_DEMO_PASSWORD)
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
        assert len(ours) == report["present"]["preventive plans"]

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

    second = run_demo(suite.url, *SMALL, "--report", str(tmp_path / "second.json"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already loaded" in second.stdout
    again = json.loads((tmp_path / "second.json").read_text())
    assert again["already_loaded"] is True
    assert again["created"] == {}
    assert again["present"] == report["present"]
    assert again["statuts"] == report["statuts"]


def test_demo_explains_a_refused_admin_and_an_unreachable_gateway(suite: Suite) -> None:
    refused = run_demo(suite.url, *SMALL, password="Not-the-admin-password-1!")
    assert refused.returncode == 1
    assert "MIF_ADMIN_PASSWORD" in refused.stdout and "401" in refused.stdout

    unreachable = run_demo("http://127.0.0.1:9", *SMALL)
    assert unreachable.returncode == 1
    assert "Cannot reach the gateway at http://127.0.0.1:9" in unreachable.stdout
