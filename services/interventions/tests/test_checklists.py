"""Checklists on interventions (docs/interventions.md, "Checklists"): the steps of a plan's template
copied from `planning.occurrence.due.v1`, a template a manager adds, filling rules (only the assigned
technician or a manager, only `en_cours`, the answer of the step's type, out-of-bounds measures flagged
in the history, a photo must be a document of the intervention), a measure feeding a meter, and closing
refused while required steps are undone, by either path to `cloturee`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_documents.testing import document_deleted_data, document_uploaded_data
from mif_interventions.testing import Deliver, Tech, World, new_id, outbox_envelopes
from mif_planning.testing import checklist_data, checklist_snapshot, occurrence_data


def url(intervention_id: int, etape_id: int | None = None) -> str:
    base = f"/api/v1/interventions/{intervention_id}/checklist"
    return base if etape_id is None else f"{base}/etapes/{etape_id}"


async def preventive_with_checklist(world: World, deliver: Deliver, tech: Tech) -> tuple[int, list[dict[str, Any]]]:
    """A preventive intervention created from a plan occurrence carrying the example template, assigned
    to `tech`; its id and steps."""
    eid = await world.equipement(nom="Pompe P-12")
    checklist_id = new_id()
    data = occurrence_data(
        new_id(), eid, datetime.now(UTC), technicien_id=tech.id, checklist=checklist_snapshot(checklist_id)
    )
    assert await deliver("planning.occurrence.due.v1", data)
    response = await world.http.get("/api/v1/interventions", params={"equipement_id": eid}, headers=world.manager)
    [intervention] = response.json()
    steps = await world.http.get(url(intervention["id"]), headers=tech.headers)
    assert steps.status_code == 200, steps.text
    return intervention["id"], steps.json()


async def test_an_occurrence_with_a_checklist_creates_the_intervention_with_its_steps(
    world: World, deliver: Deliver, db_session: AsyncSession
) -> None:
    tech = await world.technicien()
    _, steps = await preventive_with_checklist(world, deliver, tech)
    assert [(s["ordre"], s["type"], s["libelle"], s["obligatoire"], s["rempli"]) for s in steps] == [
        (1, "verification", "Consigner la machine", True, False),
        (2, "mesure", "Mesurer la température", True, False),
        (3, "texte", "Observations", False, False),
        (4, "photo", "Photo du joint", True, False),
    ]
    assert (steps[1]["unite"], steps[1]["min"], steps[1]["max"], steps[1]["compteur_code"]) == (
        "°C",
        20.0,
        80.0,
        "temperature",
    )
    assert {s["checklist_nom"] for s in steps} == {"Révision pompe"}
    # An occurrence without a checklist (an older event) creates an intervention without steps.
    eid = await world.equipement()
    assert await deliver("planning.occurrence.due.v1", occurrence_data(new_id(), eid, datetime.now(UTC)))
    other = await db_session.scalar(text("SELECT id FROM intervention WHERE equipement_id = :e"), {"e": eid})
    assert (await world.http.get(url(other), headers=world.manager)).json() == []


async def test_filling_rules_and_closing_needs_the_required_steps(
    world: World, deliver: Deliver, db_session: AsyncSession, client: httpx.AsyncClient
) -> None:
    tech = await world.technicien()
    other = await world.technicien()
    iid, steps = await preventive_with_checklist(world, deliver, tech)
    verif, mesure, texte, photo = (s["id"] for s in steps)

    # Not while `affectee`: 409 naming the statut.
    early = await client.put(url(iid, verif), json={"fait": True}, headers=tech.headers)
    assert early.status_code == 409 and "affectee" in early.json()["detail"]
    assert (await world.act(iid, "demarrer", tech.headers)).status_code == 200

    # Only the assigned technician (another one does not see it), never a client user.
    assert (await client.put(url(iid, verif), json={"fait": True}, headers=other.headers)).status_code == 404
    assert (await client.get(url(iid), headers=other.headers)).status_code == 404
    assert (await client.put(url(iid, verif), json={"fait": True}, headers=world.client_user(1))).status_code == 403
    # The answer of the step's type, alone; a step of another intervention is 404.
    assert (await client.put(url(iid, verif), json={"valeur": 3}, headers=tech.headers)).status_code == 422
    assert (
        await client.put(url(iid, mesure), json={"valeur": 3, "fait": True}, headers=tech.headers)
    ).status_code == 422
    assert (await client.put(url(iid, 987654321), json={"fait": True}, headers=tech.headers)).status_code == 404

    # Closing with required steps undone: 409 naming them, by the action and by PATCH /statut.
    refused = await world.act(iid, "cloturer", tech.headers)
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "Étapes obligatoires non remplies : 1. Consigner la machine ; 2. Mesurer la température ; " in detail
    assert "4. Photo du joint" in detail and "Observations" not in detail
    patched = await client.patch(
        f"/api/v1/interventions/{iid}/statut", params={"statut": "cloturee"}, headers=tech.headers
    )
    assert patched.status_code == 409 and "Étapes obligatoires non remplies" in patched.json()["detail"]

    # A "no" on a check is answered but not done.
    filled = await client.put(url(iid, verif), json={"fait": False}, headers=tech.headers)
    assert filled.status_code == 200 and filled.json()["rempli"] is False
    assert (await client.put(url(iid, verif), json={"fait": True}, headers=tech.headers)).json()["rempli"] is True

    # An out-of-bounds measure is accepted, flagged and written to the history with value and bounds.
    hot = await client.put(url(iid, mesure), json={"valeur": 95.5}, headers=tech.headers)
    assert hot.status_code == 200, hot.text
    assert (hot.json()["valeur_mesure"], hot.json()["hors_limites"], hot.json()["rempli_par"]) == (
        95.5,
        True,
        tech.user_id,
    )
    history = (await client.get(f"/api/v1/interventions/{iid}/historique", headers=world.manager)).json()
    row = [h for h in history if h["action"] == "checklist"][-1]
    assert row["remarque"] == "Étape 2. Mesurer la température : 95,5 °C — HORS LIMITES [20 ; 80] °C"
    assert row["apres"]["hors_limites"] is True and (row["apres"]["min"], row["apres"]["max"]) == (20.0, 80.0)
    # The measure feeds the equipment's `temperature` meter: one event for assets.
    [measured] = [e for e in await outbox_envelopes(db_session, intervention_id=iid) if e["type"].endswith("mesure.v1")]
    assert measured["data"]["compteur_code"] == "temperature" and measured["data"]["valeur"] == 95.5
    assert measured["data"]["user_id"] == tech.user_id and measured["data"]["hors_limites"] is True

    # A photo must be a document attached to this intervention (and not deleted since).
    assert (await client.put(url(iid, photo), json={"document_id": 4242}, headers=tech.headers)).status_code == 422
    await deliver("documents.document.uploaded.v1", document_uploaded_data(4242, iid, mime="image/jpeg"))
    await deliver("documents.document.uploaded.v1", document_uploaded_data(4343, iid, mime="image/jpeg"))
    await deliver("documents.document.deleted.v1", document_deleted_data(4343, iid))
    assert (await client.put(url(iid, photo), json={"document_id": 4343}, headers=tech.headers)).status_code == 422

    still = await world.act(iid, "cloturer", tech.headers)
    assert still.status_code == 409 and still.json()["detail"].startswith("Étapes obligatoires non remplies : 4. Photo")
    assert (await client.put(url(iid, photo), json={"document_id": 4242}, headers=tech.headers)).status_code == 200
    assert (await client.put(url(iid, texte), json={"texte": "RAS"}, headers=world.manager)).status_code == 200
    closed = await world.act(iid, "cloturer", tech.headers)
    assert closed.status_code == 200 and closed.json()["statut"] == "cloturee"
    # Closed: nothing more is filled.
    late = await client.put(url(iid, texte), json={"texte": "Oubli"}, headers=tech.headers)
    assert late.status_code == 409 and "cloturee" in late.json()["detail"]


async def test_a_manager_adds_a_template_from_the_replica_to_any_intervention(
    world: World, deliver: Deliver, client: httpx.AsyncClient
) -> None:
    checklist_id = new_id()
    etapes = [{"ordre": 1, "type": "verification", "libelle": "Vérifier la pression", "obligatoire": True}]
    assert await deliver("planning.checklist.created.v1", checklist_data(checklist_id, etapes=etapes, nom="Sécurité"))
    tech = await world.technicien()
    created = await world.intervention(technicien_id=tech.id)
    iid = created["id"]
    body = {"checklist_id": checklist_id}
    assert (await client.post(url(iid), json=body, headers=tech.headers)).status_code == 403
    added = await client.post(url(iid), json=body, headers=world.manager)
    assert added.status_code == 201, added.text
    assert [(s["ordre"], s["libelle"], s["checklist_id"]) for s in added.json()] == [
        (1, "Vérifier la pression", checklist_id)
    ]
    assert (await client.post(url(iid), json=body, headers=world.manager)).status_code == 409  # already there
    # A newer version changes what is added next, never the copy; an older one is ignored.
    newer = [*etapes, {"ordre": 2, "type": "texte", "libelle": "Remarques", "obligatoire": False}]
    assert await deliver("planning.checklist.updated.v1", checklist_data(checklist_id, version=3, etapes=newer))
    assert await deliver("planning.checklist.updated.v1", checklist_data(checklist_id, version=2, etapes=etapes))
    second = await world.intervention()
    steps = (await client.post(url(second["id"]), json=body, headers=world.manager)).json()
    assert [s["libelle"] for s in steps] == ["Vérifier la pression", "Remarques"]
    assert len((await client.get(url(iid), headers=world.manager)).json()) == 1
    # Deleted at planning: no longer added; unknown: 422 too.
    assert await deliver("planning.checklist.deleted.v1", checklist_data(checklist_id, version=4))
    third = await world.intervention()
    gone = await client.post(url(third["id"]), json=body, headers=world.manager)
    assert gone.status_code == 422 and "checklist" in gone.json()["detail"]
    # The required step blocks the closing of the first intervention until done.
    assert (await world.act(iid, "demarrer", tech.headers)).status_code == 200
    assert (await world.act(iid, "cloturer", tech.headers)).status_code == 409
    step = (await client.get(url(iid), headers=tech.headers)).json()[0]
    assert (await client.put(url(iid, step["id"]), json={"fait": True}, headers=tech.headers)).status_code == 200
    assert (await world.act(iid, "cloturer", tech.headers)).status_code == 200
