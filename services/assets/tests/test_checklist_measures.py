"""A checklist's measure (`interventions.checklist.mesure.v1`) becomes a reading of the equipment's meter,
through the real consumer path: one `assets.releves.recorded.v1`, nothing new on redelivery, and what the
meter cannot take (an unknown code, a counter going back) skipped and logged, never an error."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import Deliver, Headers, Make
from mif_common.testing.events import example
from mif_interventions.events import ChecklistMesure

MESURE = "interventions.checklist.mesure.v1"


def mesure_data(equipement_id: int, code: str, valeur: float, horodatage: datetime, **fields: Any) -> dict[str, Any]:
    """`data` of the event, checked against interventions' own payload model."""
    return example(
        ChecklistMesure,
        {
            "intervention_id": 31,
            "equipement_id": equipement_id,
            "etape_id": 7,
            "compteur_code": code,
            "valeur": valeur,
            "unite": "h",
            "hors_limites": False,
            "horodatage": horodatage,
            "user_id": 1003,
        }
        | fields,
    )


async def make_meter(client: httpx.AsyncClient, manager: Headers, equipement_id: int, code: str, unite: str) -> int:
    response = await client.post(
        f"/api/v1/equipements/{equipement_id}/compteurs", json={"code": code, "unite": unite}, headers=manager
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def readings(client: httpx.AsyncClient, manager: Headers, equipement_id: int, cid: int) -> list[Any]:
    response = await client.get(
        f"/api/v1/equipements/{equipement_id}/compteurs/{cid}/releves",
        params={"depuis": "2000-01-01T00:00:00Z"},
        headers=manager,
    )
    assert response.status_code == 200, response.text
    return [(row["valeur"], row["source"]) for row in response.json()]


async def recorded_events(db_session: AsyncSession, cid: int) -> list[Any]:
    rows = await db_session.execute(
        text("SELECT envelope FROM outbox WHERE subject = :s AND type = 'assets.releves.recorded.v1'"),
        {"s": str(cid)},
    )
    return [row.envelope for row in rows]


async def test_a_measure_is_a_manual_reading_announced_once_and_stored_once(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver, db_session: AsyncSession
) -> None:
    eid = (await make_equipement())["id"]
    cid = await make_meter(client, manager, eid, "heures_marche", "h")
    other = await make_meter(client, manager, eid, "temperature", "°C")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    event_id = str(uuid.uuid4())
    assert await deliver(MESURE, event_id=event_id, **mesure_data(eid, "heures_marche", 1250.5, at))
    assert await readings(client, manager, eid, cid) == [(1250.5, "manuel")]
    assert await readings(client, manager, eid, other) == []
    [event] = await recorded_events(db_session, cid)
    assert event["causationid"] == event_id
    data = event["data"]
    assert (data["source"], data["nombre"], data["derniere_valeur"], data["code"]) == (
        "manuel",
        1,
        1250.5,
        "heures_marche",
    )
    assert data["equipement_id"] == eid and data["remise_a_zero"] is False

    # Redelivered: the inbox drops it. The same measure under another event id (a replay): the
    # (meter, instant) key keeps one reading, and no event announces nothing.
    assert not await deliver(MESURE, event_id=event_id, **mesure_data(eid, "heures_marche", 1250.5, at))
    assert await deliver(MESURE, **mesure_data(eid, "heures_marche", 1250.5, at))
    assert await readings(client, manager, eid, cid) == [(1250.5, "manuel")]
    assert len(await recorded_events(db_session, cid)) == 1


async def test_what_the_meter_cannot_take_is_logged_and_skipped(
    client: httpx.AsyncClient,
    manager: Headers,
    make_equipement: Make,
    deliver: Deliver,
    db_session: AsyncSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    eid = (await make_equipement())["id"]
    neighbour = (await make_equipement())["id"]
    cid = await make_meter(client, manager, eid, "heures_marche", "h")
    await make_meter(client, manager, neighbour, "cycles", "cycles")
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    assert await deliver(MESURE, **mesure_data(eid, "heures_marche", 800, at))

    caplog.set_level(logging.WARNING, logger="mif_assets.replicas")
    # A code the equipment has no meter for (another equipment's does not count): handled, nothing stored.
    assert await deliver(MESURE, **mesure_data(eid, "cycles", 12, at + timedelta(minutes=1)))
    assert f"equipment {eid} has no meter 'cycles'" in caplog.text
    # A counter value lower than the reading before it: handled (the queue goes on), nothing stored.
    assert await deliver(MESURE, **mesure_data(eid, "heures_marche", 790, at + timedelta(minutes=2)))
    assert "lower than the reading before it" in caplog.text
    assert await readings(client, manager, eid, cid) == [(800.0, "manuel")]
    assert len(await recorded_events(db_session, cid)) == 1

    # The consumer still takes the next measure.
    assert await deliver(MESURE, **mesure_data(eid, "heures_marche", 805, at + timedelta(minutes=3)))
    assert await readings(client, manager, eid, cid) == [(800.0, "manuel"), (805.0, "manuel")]
