"""A write that loses a race on a unique index (the pre-check saw no duplicate, the other writer committed
first) answers as the pre-check would have; deactivation through an update publishes `deactivated`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.models import Client, Equipement
from mif_assets.service import ClientInvalide, NomDejaPris, _flush_unique
from mif_assets.testing import Headers, Make, outbox_envelopes


async def _flush_after_race(session: AsyncSession, row: Any) -> BaseException:
    """Insert `row` as a writer whose pre-check passed would; return what `_flush_unique` raised."""
    savepoint = await session.begin_nested()
    session.add(row)
    try:
        await _flush_unique(session)
    except Exception as exc:
        await savepoint.rollback()
        return exc
    raise AssertionError("the flush went through")


def _equipement(**fields: Any) -> Equipement:
    return Equipement(**({"nom": "Presse P-1", "type": "presse", "localisation": "Atelier A"} | fields))


async def test_lost_races_answer_as_the_pre_checks(db_session: AsyncSession) -> None:
    client = Client(nom_entreprise="Sidérurgie Atlas")
    db_session.add(client)
    db_session.add(_equipement(numero_serie="SN-77"))
    await db_session.flush()

    taken = await _flush_after_race(db_session, Client(nom_entreprise="SIDÉRURGIE ATLAS"))
    assert isinstance(taken, NomDejaPris)
    assert taken.detail == "A client organisation with this name already exists."
    assert isinstance(taken.__cause__, IntegrityError)

    taken = await _flush_after_race(db_session, _equipement(nom="presse p-1"))
    assert isinstance(taken, NomDejaPris)
    assert taken.detail == "An equipment with this name already exists."

    taken = await _flush_after_race(db_session, _equipement(nom="Presse P-2", numero_serie="sn-77"))
    assert isinstance(taken, NomDejaPris)
    assert taken.detail == "An equipment with this serial number already exists."

    gone = await _flush_after_race(db_session, _equipement(nom="Presse P-3", client_id=client.id + 10_000))
    assert isinstance(gone, ClientInvalide)
    assert gone.detail == "The client organisation does not exist."

    # Any other integrity error is not a race this function knows: it goes on as it is.
    other = await _flush_after_race(db_session, _equipement(nom="Presse P-4", frequence_entretien=0))
    assert isinstance(other, IntegrityError)


@pytest.mark.parametrize("fields", [{"is_active": False}, {"is_active": False, "ville": "Safi"}])
async def test_an_update_that_deactivates_publishes_deactivated(
    client: httpx.AsyncClient, manager: Headers, make_client: Make, db_session: AsyncSession, fields: dict[str, Any]
) -> None:
    created = await make_client()
    cid = created["id"]
    response = await client.put(f"/api/v1/clients/{cid}", json=fields, headers=manager)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    events = await outbox_envelopes(db_session, entity="client", subject=cid)
    assert [e["type"] for e in events] == ["assets.client.created.v1", "assets.client.deactivated.v1"]
    assert events[1]["data"]["is_active"] is False
    assert events[1]["data"]["version"] == 2
    assert (await client.get(f"/api/v1/clients/{cid}", headers=manager)).json()["is_active"] is False
