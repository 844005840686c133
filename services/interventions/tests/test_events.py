"""Events: what interventions publishes (the contract assets consumes, validated by assets' own model)
and what it consumes (equipment, technicians, users, plan occurrences, documents), through the real
consumer path; the lateness pass."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.schemas import InterventionFact
from mif_assets.testing import equipement_data
from mif_auth.testing import user_data
from mif_documents.testing import document_deleted_data, document_uploaded_data
from mif_interventions import jobs
from mif_interventions.events import ALL_EVENTS, SNAPSHOT_EVENTS
from mif_interventions.testing import CONTRACT_FIELDS, Deliver, World, new_id, outbox_envelopes
from mif_planning.testing import occurrence_data, technicien_data


def test_eleven_event_types_each_with_the_contract_fields() -> None:
    verbs = "created assigned unassigned started paused resumed closed cancelled archived updated late"
    snapshots = [f"interventions.intervention.{v}.v1" for v in verbs.split()]
    assert [e.event_type for e in SNAPSHOT_EVENTS] == snapshots
    assert all(set(e.model_fields) == CONTRACT_FIELDS for e in SNAPSHOT_EVENTS)
    assert [e.event_type for e in ALL_EVENTS] == [*snapshots, "interventions.checklist.mesure.v1"]


async def test_published_events_validate_against_what_assets_expects(world: World, db_session: AsyncSession) -> None:
    tech = await world.technicien()
    created = await world.intervention(urgence=True, technicien_id=tech.id)
    iid = created["id"]
    for action, body in (("demarrer", {}), ("cloturer", {}), ("archiver", {})):
        assert (await world.act(iid, action, **body)).status_code == 200
    events = await outbox_envelopes(db_session, intervention_id=iid)
    assert len(events) == 4
    for envelope in events:
        assert envelope["source"] == "/mif/interventions" and envelope["specversion"] == "1.0"
        assert set(envelope["data"]) == CONTRACT_FIELDS
        fact = InterventionFact.model_validate(envelope["data"])  # assets' consumer model
        assert fact.intervention_id == iid and fact.equipement_id == created["equipement_id"]
        assert fact.urgence is True and fact.priorite == "urgente" and fact.occurred_at.tzinfo is not None


# --- the equipment replica ------------------------------------------------------------------------------


async def equipement_row(db_session: AsyncSession, equipement_id: int) -> object:
    return (
        await db_session.execute(text("SELECT * FROM equipement_ref WHERE id = :id"), {"id": equipement_id})
    ).one_or_none()


async def test_equipment_events_keep_the_replica_and_drop_stale_ones(
    deliver: Deliver, db_session: AsyncSession
) -> None:
    eid = new_id()
    assert await deliver("assets.equipement.created.v1", equipement_data(eid, nom="Pompe A", version=1))
    await deliver("assets.equipement.status_changed.v1", equipement_data(eid, nom="Pompe A", statut="panne", version=3))
    await deliver("assets.equipement.updated.v1", equipement_data(eid, nom="Pompe ancienne", version=2))  # late
    row = await equipement_row(db_session, eid)
    assert row is not None and (row.nom, row.statut, row.version) == ("Pompe A", "panne", 3)
    event_id = str(uuid.uuid4())
    data = equipement_data(eid, nom="Pompe B", version=4)
    assert await deliver("assets.equipement.updated.v1", data, event_id=event_id)
    assert not await deliver("assets.equipement.updated.v1", data, event_id=event_id)  # duplicate delivery
    await deliver("assets.equipement.deleted.v1", equipement_data(eid, nom="Pompe B", version=5))
    assert await equipement_row(db_session, eid) is None


async def test_a_malformed_event_is_permanent_and_writes_nothing(deliver: Deliver, db_session: AsyncSession) -> None:
    event_id = str(uuid.uuid4())
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver("assets.equipement.created.v1", {"equipement_id": 1}, event_id=event_id)
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}) == 0


async def test_technician_events_decide_who_may_be_assigned_and_what_they_see(
    world: World, deliver: Deliver, client: httpx.AsyncClient
) -> None:
    tech = await world.technicien(full_name="Omar")
    created = await world.intervention(technicien_id=tech.id)
    assert created["technicien"] == {"id": tech.id, "full_name": "Omar"}
    seen = await client.get("/api/v1/interventions", headers=tech.headers)
    assert [i["id"] for i in seen.json()] == [created["id"]]
    await deliver(
        "planning.technicien.updated.v1", technicien_data(tech.id, tech.user_id, full_name="Omar Alaoui", version=2)
    )
    await deliver(
        "planning.technicien.updated.v1", technicien_data(tech.id, tech.user_id, full_name="Vieux nom", version=1)
    )
    read = await client.get(f"/api/v1/interventions/{created['id']}", headers=world.manager)
    assert read.json()["technicien"]["full_name"] == "Omar Alaoui"
    await deliver("planning.technicien.deleted.v1", technicien_data(tech.id, tech.user_id, is_active=False, version=3))
    refused = await client.post(
        "/api/v1/interventions",
        json={"titre": "x", "type": "corrective", "equipement_id": created["equipement_id"], "technicien_id": tech.id},
        headers=world.manager,
    )
    assert refused.status_code == 422


async def test_a_technician_without_a_profile_sees_nothing(world: World, client: httpx.AsyncClient) -> None:
    await world.intervention()
    stranger = world.auth_headers("technicien", user_id=new_id())
    listing = await client.get("/api/v1/interventions", headers=stranger)
    assert listing.status_code == 200 and listing.json() == [] and listing.headers["x-total-count"] == "0"


# --- plan occurrences ---------------------------------------------------------------------------------------


async def test_a_plan_occurrence_creates_exactly_one_preventive_intervention(
    world: World, deliver: Deliver, db_session: AsyncSession, client: httpx.AsyncClient
) -> None:
    org = new_id()
    eid = await world.equipement(client_id=org, nom="Groupe froid GF-2")
    tech = await world.technicien()
    planning_id = new_id()
    due = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    data = occurrence_data(planning_id, eid, due, technicien_id=tech.id, equipement_nom="Groupe froid GF-2")
    assert await deliver("planning.occurrence.due.v1", data)
    assert await deliver("planning.occurrence.due.v1", data)  # a replay with another event id
    assert await deliver("planning.occurrence.due.v1", data)
    rows = (
        await db_session.execute(text("SELECT * FROM intervention WHERE planning_id = :p"), {"p": planning_id})
    ).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.titre == "Maintenance préventive - Groupe froid GF-2" and row.type == "preventive"
    assert row.priorite == "normale" and row.statut == "affectee" and row.technicien_id == tech.id
    assert row.client_id == org and row.occurrence_key == data["occurrence_key"] and row.created_by is None
    assert row.date_limite == due + timedelta(hours=72)
    [event] = await outbox_envelopes(db_session, intervention_id=row.id)
    assert event["type"] == "interventions.intervention.created.v1" and event["data"]["actor_id"] is None
    seen = await client.get(f"/api/v1/interventions?planning_id={planning_id}", headers=world.client_user(org))
    assert [i["id"] for i in seen.json()] == [row.id]

    next_due = occurrence_data(planning_id, eid, due + timedelta(days=30))
    assert await deliver("planning.occurrence.due.v1", next_due)
    total = await db_session.scalar(
        text("SELECT count(*) FROM intervention WHERE planning_id = :p"), {"p": planning_id}
    )
    assert total == 2


async def test_a_threshold_rule_s_occurrence_creates_one_corrective_intervention_with_its_priority(
    world: World, deliver: Deliver, db_session: AsyncSession
) -> None:
    eid = await world.equipement(nom="Pompe P-12")
    planning_id = new_id()
    due = datetime(2026, 3, 1, 6, 10, tzinfo=UTC)
    data = occurrence_data(
        planning_id,
        eid,
        due,
        occurrence_key=f"{planning_id}:s:2026-03-01T06:00:00+00:00",
        frequence="seuil",
        type="corrective",
        priorite="urgente",
        titre="Vibrations pompe P-12",
        regle={
            "declencheur": "seuil",
            "compteur_id": 7,
            "compteur_code": "vibration",
            "unite": "mm/s",
            "valeur": 8.4,
            "seuil": 7.1,
            "operateur": ">",
            "debut_episode": "2026-03-01T06:00:00+00:00",
        },
    )
    assert await deliver("planning.occurrence.due.v1", data)
    assert await deliver("planning.occurrence.due.v1", data)  # a replay with another event id
    [row] = (
        await db_session.execute(text("SELECT * FROM intervention WHERE planning_id = :p"), {"p": planning_id})
    ).all()
    assert (row.type, row.priorite, row.titre) == ("corrective", "urgente", "Vibrations pompe P-12")
    assert row.urgence is True and row.statut == "ouverte" and row.occurrence_key == data["occurrence_key"]
    assert row.date_limite < due + timedelta(hours=72)  # the urgent SLA, not the normal one


async def test_an_occurrence_on_equipment_not_yet_known_gets_its_client_later(
    deliver: Deliver, db_session: AsyncSession
) -> None:
    eid, org, tech = new_id(), new_id(), new_id()
    data = occurrence_data(new_id(), eid, datetime.now(UTC), technicien_id=tech, equipement_nom="Chaudière")
    await deliver("planning.occurrence.due.v1", data)
    row = (
        await db_session.execute(
            text("SELECT id, statut, client_id, titre FROM intervention WHERE occurrence_key = :k"),
            {"k": data["occurrence_key"]},
        )
    ).one()
    assert (row.statut, row.client_id, row.titre) == ("ouverte", None, "Maintenance préventive - Chaudière")
    remark = await db_session.scalar(text("SELECT remarque FROM historique WHERE intervention_id = :i"), {"i": row.id})
    assert remark is not None and str(tech) in remark  # unknown technician: left unassigned, said why
    await deliver("assets.equipement.created.v1", equipement_data(eid, client_id=org))
    filled = await db_session.scalar(text("SELECT client_id FROM intervention WHERE id = :i"), {"i": row.id})
    assert filled == org


# --- users and documents ------------------------------------------------------------------------------------


async def test_user_events_feed_the_user_counts(deliver: Deliver, db_session: AsyncSession) -> None:
    uid = new_id()
    t0 = datetime.now(UTC)
    await deliver("auth.user.created.v1", user_data(uid), time=t0)
    await deliver("auth.user.deactivated.v1", user_data(uid, is_active=False), time=t0 + timedelta(seconds=2))
    await deliver("auth.user.activated.v1", user_data(uid), time=t0 + timedelta(seconds=1))  # older
    active = await db_session.scalar(text("SELECT is_active FROM user_ref WHERE user_id = :u"), {"u": uid})
    assert active is False


async def test_documents_added_and_deleted_are_history_rows(
    world: World, deliver: Deliver, client: httpx.AsyncClient
) -> None:
    created = await world.intervention()
    data = document_uploaded_data(77, created["id"], filename="photo.jpg", mime="image/jpeg", categorie="photo")
    await deliver("documents.document.uploaded.v1", data)
    await deliver("documents.document.uploaded.v1", {**data, "intervention_id": 987654321})  # unknown: ignored
    await deliver("documents.document.deleted.v1", document_deleted_data(77, created["id"], deleted_by=6))
    history = (await client.get(f"/api/v1/interventions/{created['id']}/historique", headers=world.manager)).json()
    added, deleted = history[-2:]
    assert added["action"] == "document" and added["user_id"] == 5
    assert added["remarque"] == "Document ajouté : photo.jpg"
    assert added["apres"] == {"document_id": 77, "filename": "photo.jpg", "categorie": "photo"}
    assert deleted["action"] == "document" and deleted["user_id"] == 6 and deleted["avant"]["document_id"] == 77


# --- lateness ------------------------------------------------------------------------------------------------


async def test_the_lateness_pass_announces_each_late_intervention_once(
    world: World, db_session: AsyncSession, client: httpx.AsyncClient
) -> None:
    urgent = await world.intervention(priorite="urgente")  # 2 h
    normal = await world.intervention(priorite="normale")  # 72 h
    closed = await world.intervention(priorite="urgente")
    await world.act(closed["id"], "annuler", remarque="doublon")
    soon = datetime.now(UTC) + timedelta(hours=3)
    assert await jobs.mark_late(db_session, at=soon) == 1
    assert await jobs.mark_late(db_session, at=soon) == 0  # once
    events = await outbox_envelopes(db_session, intervention_id=urgent["id"])
    assert [e["type"] for e in events][-1] == "interventions.intervention.late.v1"
    assert events[-1]["data"]["statut"] == "ouverte" and events[-1]["data"]["actor_id"] is None
    assert [e["type"] for e in await outbox_envelopes(db_session, intervention_id=closed["id"])][-1].endswith(
        "cancelled.v1"
    )
    history = (await client.get(f"/api/v1/interventions/{urgent['id']}/historique", headers=world.manager)).json()
    assert history[-1]["action"] == "retard"

    # Moving the deadline later re-arms it; the listing's en_retard follows the clock.
    later = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    await client.patch(f"/api/v1/interventions/{urgent['id']}", json={"date_limite": later}, headers=world.manager)
    assert await jobs.mark_late(db_session, at=datetime.now(UTC) + timedelta(days=11)) == 2
    assert normal["en_retard"] is False
