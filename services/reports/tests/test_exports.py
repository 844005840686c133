"""Exports at the service: small ones answered with the file, large ones (or asked so) as jobs taken by the
job pass, their signed links, expiry and failures; the refusals."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.testing.events import Deliver
from mif_reports import jobs
from mif_reports.models import ExportJob
from mif_reports.testing import CLIENT_A, month_of_november

Headers = dict[str, str]
NOVEMBER = {"du": "2026-11-01", "au": "2026-11-30"}


@pytest.fixture
async def november(deliver: Deliver) -> None:
    for event_type, data in month_of_november():
        await deliver(event_type, data)


def csv_rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


@pytest.mark.usefixtures("november")
async def test_a_small_list_is_answered_at_once(client: httpx.AsyncClient, manager: Headers) -> None:
    body = {"rapport": "interventions", "format": "csv", "filtres": NOVEMBER}
    response = await client.post("/api/v1/rapports/exports", json=body, headers=manager)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].startswith('attachment; filename="interventions-')
    rows = csv_rows(response.content)
    assert rows[0][:3] == ["N°", "Titre", "Type"]
    assert sorted(int(r[0]) for r in rows[1:]) == [1, 2, 3, 4, 5, 6]
    one = next(r for r in rows[1:] if r[0] == "1")
    assert "02/11/2026" in one[rows[0].index("Créée le")]
    assert one[rows[0].index("Pièces (MAD)")] == "80,00"


@pytest.mark.usefixtures("november")
async def test_a_client_exports_its_own_organisation(
    client: httpx.AsyncClient, client_user: Callable[[int], Headers]
) -> None:
    body = {"rapport": "interventions", "format": "xlsx", "filtres": NOVEMBER}
    response = await client.post("/api/v1/rapports/exports", json=body, headers=client_user(CLIENT_A))
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    assert sorted(row[0].value for row in sheet.iter_rows(min_row=2)) == [1, 2, 6]  # organisation A's


async def _run_jobs(app: FastAPI, db_sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    app.state.sessionmaker = db_sessionmaker  # the job pass works in the test's transaction
    while await jobs.run_one(app):
        pass


@pytest.mark.usefixtures("november")
async def test_a_job_from_pending_to_expired(
    app: FastAPI,
    client: httpx.AsyncClient,
    manager: Headers,
    db_session: AsyncSession,
    db_sessionmaker: async_sessionmaker[AsyncSession],
    exports_dir: Path,
) -> None:
    body = {"rapport": "interventions", "format": "xlsx", "filtres": NOVEMBER, "asynchrone": True}
    accepted = await client.post("/api/v1/rapports/exports", json=body, headers=manager)
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert (job["statut"], job["progression"], job["lignes"], job["lien"]) == ("pending", 0, 6, None)
    await _run_jobs(app, db_sessionmaker)
    done = (await client.get(accepted.headers["location"], headers=manager)).json()
    assert (done["statut"], done["progression"], done["lignes"]) == ("completed", 100, 6)
    file = await client.get(done["lien"])  # no Authorization
    assert file.status_code == 200 and file.content.startswith(b"PK")
    assert file.headers["content-disposition"].startswith("attachment")
    for forged in (
        done["lien"][:-2] + "xx",
        done["lien"].replace("/fichiers/", "/fichiers/9"),
        "/api/v1/rapports/fichiers/x",
    ):
        refused = await client.get(forged)
        assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/problem+json")
    events = (await db_session.execute(sa.text("SELECT type, envelope FROM outbox ORDER BY created_at"))).all()
    assert [t for t, _ in events] == ["reports.export.completed.v1"]
    assert events[0][1]["data"]["user_id"] == 1002 and events[0][1]["data"]["lignes"] == 6
    # past its time: the file deleted, the job expired, the link dead
    await db_session.execute(sa.update(ExportJob).values(expire_le=sa.func.now() - sa.text("interval '1 second'")))
    await db_session.commit()
    name = await db_session.scalar(sa.select(ExportJob.fichier))
    assert (exports_dir / name).exists()
    await jobs.expire_files(app)
    assert not (exports_dir / name).exists()
    assert (await client.get(accepted.headers["location"], headers=manager)).json()["statut"] == "expired"
    assert (await client.get(done["lien"])).status_code == 404


async def test_a_failed_job_keeps_its_reason(
    app: FastAPI,
    client: httpx.AsyncClient,
    manager: Headers,
    db_session: AsyncSession,
    db_sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    body = {"rapport": "equipements", "format": "csv", "asynchrone": True}
    accepted = await client.post("/api/v1/rapports/exports", json=body, headers=manager)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app.state.settings.exports_dir = blocker  # the exports' volume is not usable
    try:
        await _run_jobs(app, db_sessionmaker)
    finally:
        app.state.settings.exports_dir = tmp_path
    failed = (await client.get(accepted.headers["location"], headers=manager)).json()
    assert failed["statut"] == "failed" and "FileExistsError" in failed["erreur"] and failed["lien"] is None
    types = (await db_session.execute(sa.text("SELECT type FROM outbox"))).scalars().all()
    assert types == ["reports.export.failed.v1"]


async def test_jobs_are_their_requesters(
    client: httpx.AsyncClient, manager: Headers, technicien: Headers, auth_headers: Callable[..., Headers]
) -> None:
    body = {"rapport": "equipements", "format": "csv", "asynchrone": True}
    accepted = await client.post("/api/v1/rapports/exports", json=body, headers=technicien)
    assert accepted.status_code == 202
    other = auth_headers("technicien", user_id=4242)
    assert (await client.get(accepted.headers["location"], headers=other)).status_code == 404
    assert (await client.get("/api/v1/rapports/jobs", headers=other)).json() == []
    assert (await client.get(accepted.headers["location"], headers=manager)).status_code == 200
    assert (await client.delete(accepted.headers["location"], headers=technicien)).status_code == 409


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"rapport": "interventions", "format": "pdf"}, 422),
        ({"rapport": "bon_intervention", "format": "xlsx"}, 422),
        ({"rapport": "bon_intervention", "format": "pdf"}, 422),
        ({"rapport": "rapport_mensuel", "format": "pdf", "mois": "2026-11"}, 422),
        ({"rapport": "rapport_mensuel", "format": "pdf", "mois": "2026-13"}, 422),
        ({"rapport": "rapport_mensuel", "format": "pdf", "mois": "0000-01"}, 422),
        ({"rapport": "nope", "format": "csv"}, 422),
        ({"rapport": "interventions", "format": "csv", "filtres": {"du": "2026-12-01", "au": "2026-01-01"}}, 422),
        ({"rapport": "interventions", "format": "csv", "colonnes": []}, 422),
    ],
)
async def test_bad_requests_are_422(
    client: httpx.AsyncClient, manager: Headers, body: dict[str, Any], status: int
) -> None:
    response = await client.post("/api/v1/rapports/exports", json=body, headers=manager)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_what_a_role_may_not_export(
    client: httpx.AsyncClient, technicien: Headers, client_user: Callable[[int], Headers]
) -> None:
    monthly = {"rapport": "rapport_mensuel", "format": "pdf", "mois": "2026-11", "filtres": {"client_id": CLIENT_A}}
    assert (await client.post("/api/v1/rapports/exports", json=monthly, headers=technicien)).status_code == 403
    for rapport in ("pieces", "plans"):
        body = {"rapport": rapport, "format": "csv"}
        response = await client.post("/api/v1/rapports/exports", json=body, headers=client_user(CLIENT_A))
        assert response.status_code == 403


@pytest.mark.usefixtures("november")
async def test_the_monthly_report_of_a_client(
    client: httpx.AsyncClient, manager: Headers, client_user: Callable[[int], Headers]
) -> None:
    from pypdf import PdfReader

    body = {"rapport": "rapport_mensuel", "format": "pdf", "mois": "2026-11"}
    response = await client.post("/api/v1/rapports/exports", json=body, headers=client_user(CLIENT_A))
    assert response.status_code == 200, response.text
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages).replace("\u00a0", " ")
    assert "Cimenterie Atlas" in text and "novembre 2026" in text
    assert "1 580,00 MAD" in text  # organisation A's November: 360 min × 250 MAD/h + 80 MAD of parts


@pytest.mark.usefixtures("november")
async def test_the_kpis_list_has_each_month_s_figures_in_typed_cells(
    client: httpx.AsyncClient, manager: Headers
) -> None:
    """The figures of test_kpis.py's hand-computed November, one row per month, as numbers Excel computes
    with (money in MAD, ratios as fractions shown as percentages)."""
    body = {"rapport": "kpis", "format": "xlsx", "filtres": {"du": "2026-10-01", "au": "2026-11-30", "pas": "mois"}}
    response = await client.post("/api/v1/rapports/exports", json=body, headers=manager)
    assert response.status_code == 200, response.text
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    october, november = ({h: c for h, c in zip(header, row, strict=True)} for row in sheet.iter_rows(min_row=2))
    assert october["Clôturées"].value == 0 and october["MTTR travaux (min)"].value is None
    figures = {h: c.value for h, c in november.items()}
    assert figures["Période"].date().isoformat() == "2026-11-01"
    assert figures["Clôturées"] == 3
    assert (figures["MTTR travaux (min)"], figures["MTTR résolution (min)"]) == (160, 2140)
    assert figures["Respect des délais"] == pytest.approx(0.6667)
    assert november["Respect des délais"].number_format == "0.0%"
    assert (figures["Conformité préventive"], figures["Résolution du premier coup"]) == (0.5, 0.5)
    assert figures["Backlog (fin de période)"] == 2
    # 480 min × 250 MAD/h = 2,000 MAD of labour; 80 MAD of parts
    assert (figures["Main-d'œuvre"], figures["Pièces"], figures["Coût total"]) == (2000, 80, 2080)
    assert "MAD" in november["Coût total"].number_format
