"""Reactions to interventions events (DOMAIN.md §4), through the real consumer path with CloudEvent
envelopes: statut side effects, the deletion guard's replica, duplicates and reordering."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.handlers import HANDLERS
from mif_assets.testing import Deliver, Headers, Make, outbox_envelopes
from mif_interventions.testing import intervention_data

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def statut(client: httpx.AsyncClient, headers: Headers, equipement_id: int) -> str:
    response = await client.get(f"/api/v1/equipements/{equipement_id}", headers=headers)
    value: str = response.json()["statut"]
    return value


async def history(client: httpx.AsyncClient, headers: Headers, equipement_id: int) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/equipements/{equipement_id}/historique-statut", headers=headers)
    rows: list[dict[str, Any]] = response.json()
    return rows


def test_assets_takes_the_facts_that_can_change_an_equipment_and_no_other() -> None:
    """Which equipment, still open, work started: the other verbs (assigned, unassigned, paused, late)
    keep an intervention open on its equipment, and each bound type costs a transaction per fact."""
    verbs = ["created", "updated", "started", "resumed", "closed", "cancelled", "archived"]
    snapshots = {f"interventions.intervention.{v}.v1" for v in verbs}
    # And a checklist's measures: readings of the equipment's meters (test_checklist_measures.py).
    assert set(HANDLERS) == snapshots | {"interventions.checklist.mesure.v1"}


async def test_an_urgent_corrective_intervention_puts_the_equipment_down(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver, db_session: AsyncSession
) -> None:
    made = await make_equipement()
    event_id = str(uuid.uuid4())
    data = intervention_data(
        11, "ouverte", equipement_id=made["id"], priorite="urgente", occurred_at=at(0), titre="Fuite"
    )
    assert await deliver("created", event_id=event_id, **data)
    assert await statut(client, manager, made["id"]) == "panne"
    row = (await history(client, manager, made["id"]))[-1]
    assert row["ancien_statut"] == "operationnel" and row["nouveau_statut"] == "panne"
    assert row["source"] == "event" and row["event_id"] == event_id and row["user_id"] == 77
    assert row["motif"] == "Intervention corrective urgente n°11 : Fuite"
    changed = (await outbox_envelopes(db_session, entity="equipement", subject=made["id"]))[-1]
    assert changed["type"] == "assets.equipement.status_changed.v1"
    assert changed["data"]["source"] == "event" and changed["data"]["intervention_id"] == 11
    assert changed["causationid"] == event_id  # the event that caused it


@pytest.mark.parametrize(
    ("type_", "priorite", "urgence"),
    [("corrective", "haute", False), ("preventive", "urgente", True), ("diagnostic", "normale", False)],
)
async def test_other_new_interventions_leave_the_statut_alone(
    client: httpx.AsyncClient,
    manager: Headers,
    make_equipement: Make,
    deliver: Deliver,
    type_: str,
    priorite: str,
    urgence: bool,
) -> None:
    made = await make_equipement()
    data = intervention_data(12, "ouverte", equipement_id=made["id"], type=type_, priorite=priorite, urgence=urgence)
    await deliver("created", **data)
    assert await statut(client, manager, made["id"]) == "operationnel"
    assert len(await history(client, manager, made["id"])) == 1


async def test_urgence_flag_counts_as_urgent(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver
) -> None:
    made = await make_equipement()
    await deliver(
        "created", **intervention_data(13, "ouverte", equipement_id=made["id"], priorite="haute", urgence=True)
    )
    assert await statut(client, manager, made["id"]) == "panne"


async def test_work_sets_maintenance_and_closing_the_last_open_one_sets_operationnel(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver
) -> None:
    eid = (await make_equipement())["id"]
    await deliver(
        "created", **intervention_data(21, "ouverte", equipement_id=eid, priorite="urgente", occurred_at=at(0))
    )
    await deliver(
        "created", **intervention_data(22, "ouverte", equipement_id=eid, type="preventive", occurred_at=at(1))
    )
    assert await statut(client, manager, eid) == "panne"
    await deliver("started", **intervention_data(21, "en_cours", equipement_id=eid, occurred_at=at(3)))
    assert await statut(client, manager, eid) == "maintenance"
    await deliver("resumed", **intervention_data(21, "en_cours", equipement_id=eid, occurred_at=at(5)))
    assert await statut(client, manager, eid) == "maintenance"
    await deliver("closed", **intervention_data(21, "cloturee", equipement_id=eid, occurred_at=at(6)))
    assert await statut(client, manager, eid) == "maintenance"  # intervention 22 is still open
    await deliver("cancelled", **intervention_data(22, "annulee", equipement_id=eid, occurred_at=at(7)))
    assert await statut(client, manager, eid) == "operationnel"
    await deliver("archived", **intervention_data(21, "archivee", equipement_id=eid, occurred_at=at(8)))
    rows = await history(client, manager, eid)
    assert [(r["ancien_statut"], r["nouveau_statut"]) for r in rows] == [
        (None, "operationnel"),
        ("operationnel", "panne"),
        ("panne", "maintenance"),
        ("maintenance", "operationnel"),
    ]
    assert rows[-1]["motif"] == "Intervention n°22 annulée ; plus aucune intervention ouverte"


async def test_a_retired_equipment_is_never_changed_by_interventions(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver, db_session: AsyncSession
) -> None:
    eid = (await make_equipement(statut="retire"))["id"]
    await deliver(
        "created", **intervention_data(31, "ouverte", equipement_id=eid, priorite="urgente", occurred_at=at(0))
    )
    await deliver("started", **intervention_data(31, "en_cours", equipement_id=eid, occurred_at=at(1)))
    await deliver("closed", **intervention_data(31, "cloturee", equipement_id=eid, occurred_at=at(2)))
    assert await statut(client, manager, eid) == "retire"
    assert len(await history(client, manager, eid)) == 1
    assert [e["type"] for e in await outbox_envelopes(db_session, entity="equipement", subject=eid)] == [
        "assets.equipement.created.v1"
    ]


async def test_a_duplicate_delivery_has_one_effect(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver, db_session: AsyncSession
) -> None:
    eid = (await make_equipement())["id"]
    event_id = str(uuid.uuid4())
    data = intervention_data(41, "en_cours", equipement_id=eid, occurred_at=at(0))
    assert await deliver("started", event_id=event_id, **data) is True
    assert await deliver("started", event_id=event_id, **data) is False
    assert [r["nouveau_statut"] for r in await history(client, manager, eid)] == ["operationnel", "maintenance"]
    assert (
        len(await outbox_envelopes(db_session, entity="equipement", subject=eid)) == 2
    )  # created + one status_changed
    inbox = await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id})
    assert inbox == 1


async def test_an_older_event_arriving_late_is_ignored(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver, db_session: AsyncSession
) -> None:
    eid = (await make_equipement())["id"]
    # Closed (later fact) arrives before started (earlier fact): started must not put it in maintenance.
    await deliver("closed", **intervention_data(51, "cloturee", equipement_id=eid, occurred_at=at(10)))
    await deliver("started", **intervention_data(51, "en_cours", equipement_id=eid, occurred_at=at(5)))
    assert await statut(client, manager, eid) == "operationnel"
    ref = (
        await db_session.execute(text("SELECT statut, occurred_at FROM intervention_ref WHERE intervention_id = 51"))
    ).one()
    assert ref.statut == "cloturee" and ref.occurred_at == at(10)
    assert len(await history(client, manager, eid)) == 1


async def test_events_about_unknown_equipment_only_feed_the_replica(deliver: Deliver, db_session: AsyncSession) -> None:
    assert await deliver("created", **intervention_data(61, "ouverte", equipement_id=987654, priorite="urgente"))
    stored = await db_session.scalar(text("SELECT equipement_id FROM intervention_ref WHERE intervention_id = 61"))
    assert stored == 987654


@pytest.mark.parametrize(
    "data",
    [
        {"intervention_id": 1},
        intervention_data(71, "ouverte", equipement_id=1, occurred_at=datetime(2026, 3, 1, 8, 0)),  # no time zone
        intervention_data(0, "ouverte", equipement_id=1),
    ],
)
async def test_a_malformed_event_is_permanent_and_writes_nothing(
    deliver: Deliver, db_session: AsyncSession, data: dict[str, Any]
) -> None:
    event_id = str(uuid.uuid4())
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver("created", event_id=event_id, **data)
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}) == 0
