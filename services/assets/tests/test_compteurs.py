"""Meters: CRUD, defaults, unique code per equipment, roles and organisation scoping, events."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import Headers, Make, outbox_envelopes


def url(eid: int, cid: int | None = None) -> str:
    return f"/api/v1/equipements/{eid}/compteurs" + (f"/{cid}" if cid is not None else "")


async def test_manager_creates_reads_edits_and_deletes_a_meter(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, db_session: AsyncSession
) -> None:
    eid = (await make_equipement())["id"]
    created = await client.post(url(eid), json={"code": "heures_marche", "unite": "h"}, headers=manager)
    assert created.status_code == 201, created.text
    body = created.json()
    cid = body["id"]
    assert created.headers["location"] == url(eid, cid)
    assert body | {"date_creation": None, "date_modification": None} == {
        "id": cid,
        "equipement_id": eid,
        "code": "heures_marche",
        "nom": "heures_marche",
        "nature": "compteur",  # a counter by default for heures_marche, cycles, km
        "unite": "h",
        "version": 1,
        "date_creation": None,
        "date_modification": None,
    }
    gauge = await client.post(
        url(eid), json={"code": "vibration", "nom": "Vibration palier", "unite": "mm/s"}, headers=manager
    )
    assert gauge.json()["nature"] == "jauge"

    listed = await client.get(url(eid), headers=manager)
    assert listed.headers["x-total-count"] == "2"
    assert [c["code"] for c in listed.json()] == ["heures_marche", "vibration"]

    updated = await client.put(url(eid, cid), json={"nom": "Heures de marche"}, headers=manager)
    assert updated.status_code == 200 and updated.json()["nom"] == "Heures de marche"
    assert updated.json()["version"] == 2
    refused = await client.put(url(eid, cid), json={"nature": "jauge"}, headers=manager)
    assert refused.status_code == 422

    assert (await client.delete(url(eid, cid), headers=manager)).status_code == 204
    assert (await client.get(url(eid, cid), headers=manager)).status_code == 404
    # Another equipment's meter is not found through this one.
    other = (await make_equipement())["id"]
    assert (await client.get(url(other, gauge.json()["id"]), headers=manager)).status_code == 404

    events = await outbox_envelopes(db_session, entity="compteur", subject=cid)
    assert [e["type"] for e in events] == [
        "assets.compteur.created.v1",
        "assets.compteur.updated.v1",
        "assets.compteur.deleted.v1",
    ]
    assert events[0]["data"] | {"updated_at": None} == {
        "compteur_id": cid,
        "equipement_id": eid,
        "code": "heures_marche",
        "nom": "heures_marche",
        "nature": "compteur",
        "unite": "h",
        "version": 1,
        "updated_at": None,
    }
    assert [e["data"]["version"] for e in events] == [1, 2, 3]


async def test_a_code_is_unique_per_equipment_and_well_formed(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make
) -> None:
    eid = (await make_equipement())["id"]
    assert (await client.post(url(eid), json={"code": "km", "unite": "km"}, headers=manager)).status_code == 201
    again = await client.post(url(eid), json={"code": "km", "unite": "km"}, headers=manager)
    assert again.status_code == 409
    assert "already has a meter 'km'" in again.json()["detail"]
    other = (await make_equipement())["id"]
    assert (await client.post(url(other), json={"code": "km", "unite": "km"}, headers=manager)).status_code == 201
    for code in ["Km", "a b", "", "x" * 51, "é"]:
        response = await client.post(url(eid), json={"code": code, "unite": "u"}, headers=manager)
        assert response.status_code == 422, code
    unknown = await client.post(url(eid), json={"code": "km", "unite": "km", "seuil": 3}, headers=manager)
    assert unknown.status_code == 422
    assert (await client.post(url(10**12), json={"code": "km", "unite": "km"}, headers=manager)).status_code == 404


async def test_roles_and_organisations(
    client: httpx.AsyncClient,
    manager: Headers,
    technicien: Headers,
    client_user: Callable[[int], Headers],
    make_client: Make,
    make_equipement: Make,
) -> None:
    owner = (await make_client())["id"]
    stranger = (await make_client())["id"]
    eid = (await make_equipement(client_id=owner))["id"]
    cid = (await client.post(url(eid), json={"code": "cycles", "unite": "cycles"}, headers=manager)).json()["id"]
    for headers in (technicien, client_user(owner)):
        assert (await client.get(url(eid), headers=headers)).status_code == 200
        assert (await client.get(url(eid, cid), headers=headers)).status_code == 200
        assert (await client.get(url(eid, cid) + "/releves", headers=headers)).status_code == 200
        assert (await client.post(url(eid), json={"code": "km", "unite": "km"}, headers=headers)).status_code == 403
        assert (await client.put(url(eid, cid), json={"nom": "x"}, headers=headers)).status_code == 403
        assert (await client.delete(url(eid, cid), headers=headers)).status_code == 403
    # Another organisation's user: not found, so existence does not leak.
    assert (await client.get(url(eid), headers=client_user(stranger))).status_code == 404
    assert (await client.get(url(eid, cid), headers=client_user(stranger))).status_code == 404
    assert (await client.get(url(eid, cid) + "/releves", headers=client_user(stranger))).status_code == 404
    assert (await client.get(url(eid, cid) + "/releves?pas=1h", headers=client_user(stranger))).status_code == 404
    reading = {"releves": [{"horodatage": "2024-01-01T00:00:00Z", "valeur": 1}]}
    posted = await client.post(url(eid, cid) + "/releves", json=reading, headers=client_user(owner))
    assert posted.status_code == 403
    assert (await client.post(url(eid, cid) + "/releves", json=reading, headers=technicien)).status_code == 201
