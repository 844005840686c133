"""Checklist templates (docs/planning.md, "Checklists"): CRUD and who may do it, their events, a plan
carrying one, and the `checklist` its due occurrence hands to interventions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_planning.config import PlanningSettings
from mif_planning.jobs import run_due_pass
from mif_planning.testing import ETAPES_EXEMPLE, Headers, Make, MakeTech, etapes_data, outbox_envelopes

URL = "/api/v1/planning/checklists"
T0 = datetime(datetime.now(UTC).year + 1, 3, 2, 8, 0, tzinfo=UTC)


def template(nom: str = "Révision pompe", **fields: Any) -> dict[str, Any]:
    etapes = [{k: v for k, v in e.items() if k != "ordre"} for e in ETAPES_EXEMPLE]
    return {"nom": nom, "description": "Tous les mois", "etapes": etapes, **fields}


async def create(client: httpx.AsyncClient, manager: Headers, **fields: Any) -> dict[str, Any]:
    response = await client.post(URL, json=template(**fields), headers=manager)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_manager_creates_reads_replaces_and_deletes_a_template(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession
) -> None:
    created = await create(client, manager)
    assert created["version"] == 1
    assert [(e["ordre"], e["type"], e["obligatoire"]) for e in created["etapes"]] == [
        (1, "verification", True),
        (2, "mesure", True),
        (3, "texte", False),
        (4, "photo", True),
    ]
    mesure = created["etapes"][1]
    assert (mesure["unite"], mesure["min"], mesure["max"], mesure["compteur_code"]) == ("°C", 20.0, 80.0, "temperature")
    url = f"{URL}/{created['id']}"
    assert (await client.get(url, headers=manager)).json() == created
    listed = await client.get(URL, headers=manager)
    assert listed.status_code == 200 and created["id"] in [c["id"] for c in listed.json()]

    replaced = await client.put(
        url, json={"nom": "Révision pompe v2", "etapes": [{"type": "texte", "libelle": "Notes"}]}, headers=manager
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["version"] == 2 and body["description"] is None
    assert [(e["ordre"], e["libelle"]) for e in body["etapes"]] == [(1, "Notes")]

    assert (await client.delete(url, headers=manager)).status_code == 204
    assert (await client.get(url, headers=manager)).status_code == 404

    events = await outbox_envelopes(db_session, type_prefix="planning.checklist.")
    assert [(e["type"], e["data"]["version"]) for e in events] == [
        ("planning.checklist.created.v1", 1),
        ("planning.checklist.updated.v1", 2),
        ("planning.checklist.deleted.v1", 3),
    ]
    assert all(e["subject"] == str(created["id"]) for e in events)
    assert events[0]["data"]["etapes"] == etapes_data()
    assert events[2]["data"]["etapes"] == [
        {
            "ordre": 1,
            "type": "texte",
            "libelle": "Notes",
            "obligatoire": True,
            "unite": None,
            "min": None,
            "max": None,
            "compteur_code": None,
        }
    ]


async def test_technicians_read_templates_and_only_managers_write_them(
    client: httpx.AsyncClient, manager: Headers, client_user: Headers, make_technicien: MakeTech
) -> None:
    created = await create(client, manager, nom="Contrôle compresseur")
    tech = await make_technicien()
    assert (await client.get(f"{URL}/{created['id']}", headers=tech.headers)).status_code == 200
    assert (await client.get(URL, headers=tech.headers)).status_code == 200
    assert (await client.post(URL, json=template("Autre"), headers=tech.headers)).status_code == 403
    assert (await client.put(f"{URL}/{created['id']}", json=template(), headers=tech.headers)).status_code == 403
    assert (await client.delete(f"{URL}/{created['id']}", headers=tech.headers)).status_code == 403
    assert (await client.get(URL, headers=client_user)).status_code == 403


async def test_bad_templates_are_422_and_a_taken_name_409(client: httpx.AsyncClient, manager: Headers) -> None:
    await create(client, manager, nom="Graissage")
    taken = await client.post(URL, json=template("graissage"), headers=manager)
    assert taken.status_code == 409 and "graissage" in taken.json()["detail"]
    bad_steps: list[list[dict[str, Any]]] = [
        [],
        [{"type": "verification", "libelle": "Ok", "unite": "°C"}],  # a unit on a yes/no step
        [{"type": "mesure", "libelle": "T", "min": 10, "max": 5}],  # bounds upside down
        [{"type": "signature", "libelle": "Signer"}],
        [{"type": "mesure", "libelle": "T", "compteur_code": "Température!"}],
    ]
    for etapes in bad_steps:
        response = await client.post(URL, json={"nom": "X", "etapes": etapes}, headers=manager)
        assert response.status_code == 422, (etapes, response.text)


async def test_a_plan_with_a_checklist_hands_it_to_its_due_occurrence(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    db_session: AsyncSession,
    db_sessionmaker: async_sessionmaker[AsyncSession],
    mif_settings: PlanningSettings,
    known_equipement: Callable[..., Any],
) -> None:
    checklist = await create(client, manager, nom="Révision mensuelle")
    body = {"equipement_id": await known_equipement(), "frequence": "mensuel", "checklist_id": 99_999_999}
    unknown = await client.post("/api/v1/planning", json=body, headers=manager)
    assert unknown.status_code == 422
    plan = await make_plan(prochaine_date=T0.isoformat(), checklist_id=checklist["id"])
    assert plan["checklist_id"] == checklist["id"]
    without = await make_plan(prochaine_date=T0.isoformat())
    assert without["checklist_id"] is None

    # A template in use cannot go: the plans are named.
    refused = await client.delete(f"{URL}/{checklist['id']}", headers=manager)
    assert refused.status_code == 409 and f"n°{plan['id']}" in refused.json()["detail"]

    assert await run_due_pass(db_sessionmaker, settings=mif_settings, at=T0 + timedelta(minutes=1)) == 2
    events = {
        e["data"]["planning_id"]: e["data"]
        for e in await outbox_envelopes(db_session, type_prefix="planning.occurrence.due.")
    }
    assert events[plan["id"]]["checklist"] == {
        "id": checklist["id"],
        "nom": "Révision mensuelle",
        "etapes": etapes_data(),
    }
    assert events[without["id"]]["checklist"] is None

    # Detached (null), then the template may be deleted.
    detached = await client.put(f"/api/v1/planning/{plan['id']}", json={"checklist_id": None}, headers=manager)
    assert detached.status_code == 200 and detached.json()["checklist_id"] is None
    assert (await client.delete(f"{URL}/{checklist['id']}", headers=manager)).status_code == 204
