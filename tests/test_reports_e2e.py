"""The reports service end to end, through the gateway, with every service as a real process, real
PostgreSQL and RabbitMQ: figures computed from what interventions, assets and planning announce; a client
user's figures and exports limited to its organisation; an XLSX with typed cells; a work-order PDF whose
text holds the timeline and the totals; an export job from pending to a signed link that works without
Authorization, tells its requester, and stops working once the file expires."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from typing import Any

import httpx
import openpyxl
import pytest
from pypdf import PdfReader

from mif_planning.testing import technicien_data
from tests.support import Suite, event, publish, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]
RATE = 25_000  # centimes per hour: MIF_REPORTS_TAUX_HORAIRE's default


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def minutes_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60


def pdf_text(content: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return text.replace("\u00a0", " ").replace("\u202f", " ")


@pytest.fixture(scope="module")
def month(suite: Suite, admin_headers: Headers) -> dict[str, Any]:
    """An organisation with one equipment and two interventions worked by one technician: #1 urgent
    corrective closed with 90 minutes worked, #2 preventive left open; another organisation's intervention
    closed with 30 minutes."""

    def create_user(role: str, **extra: Any) -> dict[str, Any]:
        user = suite.create_user(admin_headers, role, **extra)
        user["headers"] = suite.login(user["username"])
        return user

    manager = create_user("responsable")["headers"]
    tech_user = create_user("technicien")
    technicien_id = int(time.time_ns() % 10**9)
    with suite.client() as http:
        org, other = (
            http.post("/api/v1/clients", json={"nom_entreprise": unique(name)}, headers=manager).json()
            for name in ("Cimenterie", "Minoterie")
        )
        client = create_user("client", client_id=org["id"])["headers"]
        equipement, other_equipement = (
            http.post(
                "/api/v1/equipements",
                json={"nom": unique("Broyeur"), "type": "broyeur", "localisation": "Meknès", "client_id": o["id"]},
                headers=manager,
            ).json()
            for o in (org, other)
        )
        publish(suite, event("planning.technicien.created.v1", technicien_data(technicien_id, tech_user["id"])))

        def create(equipement_id: int, **fields: Any) -> int:
            body = {"titre": unique("Intervention"), "equipement_id": equipement_id, **fields}
            response = http.post("/api/v1/interventions/", json=body, headers=manager)
            assert response.status_code == 201, response.text
            return int(response.json()["id"])

        urgent = create(equipement["id"], type="corrective", priorite="urgente", date_limite="2099-01-01T00:00:00Z")
        preventive = create(equipement["id"], type="preventive", priorite="normale")
        elsewhere = create(other_equipement["id"], type="corrective", priorite="basse")

        def assign(iid: int) -> httpx.Response | None:
            response = http.post(
                f"/api/v1/interventions/{iid}/affecter", json={"technicien_id": technicien_id}, headers=manager
            )
            return response if response.status_code == 200 else None

        for iid in (urgent, preventive, elsewhere):
            wait_for(lambda iid=iid: assign(iid), what="the technician to reach interventions")
        for iid, minutes in ((urgent, 90), (elsewhere, 30)):
            assert http.post(f"/api/v1/interventions/{iid}/demarrer", headers=tech_user["headers"]).status_code == 200
            closed = http.post(
                f"/api/v1/interventions/{iid}/cloturer",
                json={"rapport": "Roulement <côté moteur> remplacé & graissé.", "duree_reelle": minutes},
                headers=tech_user["headers"],
            )
            assert closed.status_code == 200, closed.text
        detail = http.get(f"/api/v1/interventions/{urgent}", headers=manager).json()
    return {
        "manager": manager,
        "client": client,
        "tech": tech_user["headers"],
        "org": org,
        "other": other,
        "equipement": equipement,
        "urgent": detail,
        "preventive": preventive,
    }


def kpi(http: httpx.Client, headers: Headers, name: str, **params: Any) -> dict[str, Any]:
    response = http.get(f"/api/v1/kpis/{name}", params={"pas": "mois", **params}, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_kpis_from_the_services_events(suite: Suite, month: dict[str, Any]) -> None:
    manager, org, urgent = month["manager"], month["org"], month["urgent"]
    with suite.client() as http:
        mttr = wait_for(
            lambda: (a := kpi(http, manager, "mttr", client_id=org["id"]))["valeur"]["cloturees"] == 1 and a,
            what="the closure to reach reports",
        )
        work = minutes_between(urgent["date_debut_travaux"], urgent["date_cloture"])
        resolution = minutes_between(urgent["date_creation"], urgent["date_cloture"])
        assert mttr["valeur"]["mttr_travaux_minutes"] == round(work, 1)
        assert mttr["valeur"]["mttr_resolution_minutes"] == round(resolution, 1)
        sla = kpi(http, manager, "sla", client_id=org["id"])
        assert (sla["sla_respectees"], sla["sla_evaluees"]) == (1, 1)
        costs = kpi(http, manager, "couts", client_id=org["id"])
        assert costs["valeur"] == {"cloturees": 1, "main_oeuvre": 90 * RATE // 60, "pieces": 0, "total": 37_500}
        backlog = kpi(http, manager, "backlog", client_id=org["id"])
        assert backlog["valeur"] == 1 and backlog["ages"]["0-7"] == 1
        # the urgent corrective put the equipment in `panne` (assets) until its closure
        mtbf = wait_for(
            lambda: (
                (a := kpi(http, manager, "mtbf", equipement_id=month["equipement"]["id"]))["valeur"]["pannes"] == 1
                and a
            ),
            what="the equipment's breakdown to reach reports",
        )
        assert mtbf["equipements"][0]["heures_arret"] >= 0


def test_a_client_sees_only_its_organisation(suite: Suite, month: dict[str, Any]) -> None:
    client, org = month["client"], month["org"]
    with suite.client() as http:
        other_id = month["other"]["id"]
        wait_for(
            lambda: kpi(http, month["manager"], "mttr", client_id=other_id)["valeur"]["cloturees"] == 1,
            what="the other organisation's closure",
        )
        answer = kpi(http, client, "couts", par="client")
        assert [g["client_id"] for g in answer["groupes"]] == [org["id"]]
        assert answer["valeur"]["total"] == 37_500
        refused = http.get("/api/v1/kpis/mttr", params={"client_id": month["other"]["id"]}, headers=client)
        assert refused.status_code == 403
        exported = http.post(
            "/api/v1/rapports/exports", json={"rapport": "interventions", "format": "csv"}, headers=client
        )
        assert exported.status_code == 200
        lines = exported.content.decode("utf-8-sig").strip().splitlines()
        assert len(lines) == 3  # the header and the organisation's two interventions
        assert (
            http.post(
                "/api/v1/rapports/exports", json={"rapport": "pieces", "format": "csv"}, headers=client
            ).status_code
            == 403
        )


def test_an_xlsx_export_has_typed_cells(suite: Suite, month: dict[str, Any]) -> None:
    body = {"rapport": "interventions", "format": "xlsx", "filtres": {"client_id": month["org"]["id"]}}
    with suite.client() as http:
        response = http.post("/api/v1/rapports/exports", json=body, headers=month["manager"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    header = [cell.value for cell in sheet[1]]
    assert header[:3] == ["N°", "Titre", "Type"]
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    urgent = rows[month["urgent"]["id"]]
    by_title = dict(zip(header, urgent, strict=True))
    assert isinstance(by_title["Créée le"].value, datetime)
    assert by_title["Créée le"].number_format.startswith("dd/mm/yyyy")
    assert by_title["Main-d'œuvre"].value == 375.0 and "MAD" in by_title["Main-d'œuvre"].number_format
    assert by_title["Délai respecté"].value is True


def test_the_plans_list_is_planning_s_plans_in_typed_cells(suite: Suite, month: dict[str, Any]) -> None:
    """planning owns the plans: the export reads them through its API, as the caller, and types their cells."""
    equipement = month["equipement"]
    body = {"equipement_id": equipement["id"], "frequence": "mensuel", "prochaine_date": "2099-03-15T08:00:00Z"}
    with suite.client() as http:
        created = http.post("/api/v1/planning", json=body, headers=month["manager"])
        assert created.status_code == 201, created.text
        plan = created.json()
        exported = http.post(
            "/api/v1/rapports/exports", json={"rapport": "plans", "format": "xlsx"}, headers=month["manager"]
        )
        as_client = {"rapport": "plans", "format": "csv"}
        refused = http.post("/api/v1/rapports/exports", json=as_client, headers=month["client"])
    assert exported.status_code == 200, exported.text
    sheet = openpyxl.load_workbook(io.BytesIO(exported.content)).active
    assert sheet is not None
    header = [cell.value for cell in sheet[1]]
    rows = {row[0].value: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)}
    row = rows[plan["id"]]
    assert row["Équipement"].value == equipement["nom"]
    assert (row["Déclencheur"].value, row["Fréquence"].value) == (plan["declencheur"], plan["frequence"])
    assert row["Prochaine date"].value == datetime(2099, 3, 15, 9, 0)  # Casablanca's wall clock (UTC+1)
    assert row["Prochaine date"].number_format.startswith("dd/mm/yyyy")
    assert refused.status_code == 403


def test_the_work_order_pdf_has_the_timeline_and_the_totals(suite: Suite, month: dict[str, Any]) -> None:
    urgent = month["urgent"]
    body = {"rapport": "bon_intervention", "format": "pdf", "intervention_id": urgent["id"]}
    with suite.client() as http:
        response = http.post("/api/v1/rapports/exports", json=body, headers=month["tech"])
        assert response.status_code == 200, response.text
        other = http.post("/api/v1/rapports/exports", json=body, headers=month["client"])
    assert response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content)
    assert f"n° {urgent['id']}" in text
    assert urgent["titre"] in text and month["org"]["nom_entreprise"] in text
    for step in ("Création", "Affectation", "Début des travaux", "Clôture"):
        assert step in text
    created = datetime.fromisoformat(urgent["date_creation"]).astimezone().strftime("%d/%m/%Y")
    assert created[:2] in text  # dates in dd/mm/yyyy
    assert "Roulement <côté moteur> remplacé & graissé." in text
    assert "375,00 MAD" in text  # 90 min × 250 MAD/h
    assert "Signature du technicien" in text
    assert other.status_code == 200  # the client's own organisation's intervention


def test_an_export_job_from_pending_to_an_expired_link(suite: Suite, month: dict[str, Any]) -> None:
    manager = month["manager"]
    body = {"rapport": "equipements", "format": "xlsx", "asynchrone": True}
    with suite.client() as http:
        accepted = http.post("/api/v1/rapports/exports", json=body, headers=manager)
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()
        assert job["statut"] in ("pending", "generating") and accepted.headers["location"].endswith(str(job["id"]))
        done = wait_for(
            lambda: (
                (j := http.get(accepted.headers["location"], headers=manager).json())["statut"] == "completed" and j
            ),
            what="the export job to complete",
        )
        assert done["progression"] == 100 and done["lien"] and done["lignes"] >= 2
        with httpx.Client(base_url=suite.url) as anonymous:  # no Authorization: the link is the credential
            file = anonymous.get(done["lien"])
            assert file.status_code == 200, file.text
            sheet = openpyxl.load_workbook(io.BytesIO(file.content)).active
            assert sheet is not None and sheet.max_row == done["lignes"] + 1
            tampered = done["lien"][:-3] + ("AAA" if not done["lien"].endswith("AAA") else "BBB")
            assert anonymous.get(tampered).status_code == 404
            # the requester is told (notifications' `rapport_pret`)
            wait_for(
                lambda: any(
                    n["type"] == "rapport_pret"
                    for n in http.get("/api/v1/notifications/user/me", headers=manager).json()
                ),
                what="the requester's notification",
            )
            # the file lives 18 s in this suite (MIF_REPORTS_EXPIRATION_HEURES)
            wait_for(lambda: anonymous.get(done["lien"]).status_code == 404, what="the link to expire", timeout=60)
        # the expiry pass (every second here) marks the job and deletes its file
        wait_for(
            lambda: http.get(accepted.headers["location"], headers=manager).json()["statut"] == "expired",
            what="the job to be marked expired",
        )


def test_the_rebuild_command_gives_the_same_figures(suite: Suite, month: dict[str, Any]) -> None:
    """The read model emptied and filled again through the owners' public APIs, on the running suite."""
    manager, org = month["manager"], month["org"]
    with suite.client() as http:
        wait_for(
            lambda: kpi(http, manager, "mttr", client_id=org["id"])["valeur"]["cloturees"] == 1,
            what="the closure to reach reports",
        )
        before = {name: kpi(http, manager, name, client_id=org["id"])["valeur"] for name in ("mttr", "sla", "couts")}
        rebuilt = subprocess.run(
            [sys.executable, "-m", "mif_reports.rebuild", "--gateway", suite.url],
            env={**os.environ, **suite.env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "Read model rebuilt" in rebuilt.stdout and "interventions" in rebuilt.stdout
        after = {name: kpi(http, manager, name, client_id=org["id"])["valeur"] for name in ("mttr", "sla", "couts")}
    assert after == before


def test_a_refused_sign_in_stops_the_rebuild_before_it_empties_anything(suite: Suite) -> None:
    env = {**os.environ, **suite.env, "MIF_ADMIN_PASSWORD": "not-the-password"}
    refused = subprocess.run(
        [sys.executable, "-m", "mif_reports.rebuild", "--gateway", suite.url], env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "Sign-in refused" in refused.stderr + refused.stdout
