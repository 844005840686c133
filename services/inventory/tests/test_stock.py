"""Stock movements: the ledger, never negative, retry-safe, append-only; the low-stock alert."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_inventory.testing import Headers, Make

MOVES = "/api/v1/stock/mouvements"


async def _stock(client: httpx.AsyncClient, headers: Headers, piece_id: int) -> dict[int, tuple[float, float]]:
    rows = (await client.get("/api/v1/stock", params={"piece_id": piece_id}, headers=headers)).json()
    return {r["emplacement_id"]: (r["quantite"], r["disponible"]) for r in rows}


async def _events(session: AsyncSession, event_type: str, subject: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        sa.text("SELECT envelope->'data' FROM outbox WHERE type = :t AND subject = :s ORDER BY envelope->>'time'"),
        {"t": event_type, "s": str(subject)},
    )
    return [r[0] for r in rows]


async def test_movements_keep_a_ledger_with_before_and_after(
    client: httpx.AsyncClient, manager: Headers, make_piece: Make, make_emplacement: Make, db_session: AsyncSession
) -> None:
    piece = await make_piece(unite="litre")
    central, van = await make_emplacement(), await make_emplacement(type="vehicule", technicien_id=501)
    moves: list[dict[str, Any]] = [
        {"type": "entree", "emplacement_id": central["id"], "quantite": 20},
        {"type": "sortie", "emplacement_id": central["id"], "quantite": 2.5, "motif": "Vidange compresseur"},
        {"type": "transfert", "emplacement_id": central["id"], "emplacement_destination_id": van["id"], "quantite": 5},
        {"type": "ajustement", "emplacement_id": van["id"], "quantite": 4.75, "motif": "Comptage"},
        {"type": "retour", "emplacement_id": central["id"], "quantite": 1},
    ]
    for move in moves:
        response = await client.post(MOVES, json={"piece_id": piece["id"], **move}, headers=manager)
        assert response.status_code == 201, response.text

    ledger = (await client.get(MOVES, params={"piece_id": piece["id"]}, headers=manager)).json()
    assert [(m["type"], m["emplacement_id"], m["quantite"], m["avant"], m["apres"]) for m in ledger] == [
        ("entree", central["id"], 20, 0, 20),
        ("sortie", central["id"], -2.5, 20, 17.5),
        ("transfert", central["id"], -5, 17.5, 12.5),
        ("transfert", van["id"], 5, 0, 5),
        ("ajustement", van["id"], -0.25, 5, 4.75),
        ("retour", central["id"], 1, 12.5, 13.5),
    ]
    assert ledger[1]["motif"] == "Vidange compresseur" and ledger[0]["user_id"] is not None
    assert await _stock(client, manager, piece["id"]) == {central["id"]: (13.5, 13.5), van["id"]: (4.75, 4.75)}
    assert len(await _events(db_session, "inventory.stock.moved.v1", piece["id"])) == 6


async def test_a_movement_that_would_make_stock_negative_is_409_naming_the_quantities(
    client: httpx.AsyncClient, manager: Headers, make_piece: Make, make_emplacement: Make, receive: Make
) -> None:
    piece = await make_piece(reference="FUS-10A")
    store = await make_emplacement(code="MAG-NEG")
    await receive(piece["id"], store["id"], 3)
    response = await client.post(
        MOVES,
        json={"type": "sortie", "piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 5},
        headers=manager,
    )
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "Not enough FUS-10A (Roulement "
        + piece["nom"].split()[-1]
        + ") at MAG-NEG: 5 piece asked, 3 available (on hand 3)."
    )
    assert await _stock(client, manager, piece["id"]) == {store["id"]: (3, 3)}


async def test_a_retried_movement_counts_once_and_a_reused_key_is_422(
    client: httpx.AsyncClient, manager: Headers, make_piece: Make, make_emplacement: Make
) -> None:
    piece, store = await make_piece(), await make_emplacement()
    body = {"type": "entree", "piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 7}
    key = {**manager, "Idempotency-Key": "livraison-2026-12-05-001"}
    first = await client.post(MOVES, json=body, headers=key)
    again = await client.post(MOVES, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert await _stock(client, manager, piece["id"]) == {store["id"]: (7, 7)}
    other = await client.post(MOVES, json={**body, "quantite": 8}, headers=key)
    assert other.status_code == 422


async def test_bad_movements_are_422(
    client: httpx.AsyncClient, manager: Headers, make_piece: Make, make_emplacement: Make
) -> None:
    piece, store = await make_piece(), await make_emplacement()
    base = {"piece_id": piece["id"], "emplacement_id": store["id"]}
    for body in (
        {**base, "type": "entree", "quantite": 0},
        {**base, "type": "entree", "quantite": -1},
        {**base, "type": "entree", "quantite": 1.0001},
        {**base, "type": "transfert", "quantite": 1},
        {**base, "type": "ajustement", "quantite": 1},  # no motif
        {**base, "type": "entree", "quantite": 1, "piece_id": 999_999},
        {**base, "type": "vol", "quantite": 1},
    ):
        response = await client.post(MOVES, json=body, headers=manager)
        assert response.status_code == 422, (body, response.text)


async def test_movement_rows_cannot_be_updated_or_deleted(
    client: httpx.AsyncClient,
    manager: Headers,
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    db_session: AsyncSession,
) -> None:
    piece, store = await make_piece(), await make_emplacement()
    await receive(piece["id"], store["id"], 2)
    for statement in (
        "UPDATE mouvement SET quantite = 200 WHERE piece_id = :p",
        "DELETE FROM mouvement WHERE piece_id = :p",
        "TRUNCATE mouvement CASCADE",
    ):
        savepoint = await db_session.begin_nested()
        with pytest.raises(DBAPIError, match="append-only"):
            await db_session.execute(sa.text(statement), {"p": piece["id"]})
        await savepoint.rollback()
    ledger = (await client.get(MOVES, params={"piece_id": piece["id"]}, headers=manager)).json()
    assert [(m["quantite"], m["apres"]) for m in ledger] == [(2, 2)]


async def test_low_stock_is_announced_once_per_crossing(
    client: httpx.AsyncClient,
    manager: Headers,
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    db_session: AsyncSession,
) -> None:
    piece = await make_piece(stock_minimum=3, stock_maximum=12)
    store = await make_emplacement()

    async def out(quantite: float) -> None:
        body = {"type": "sortie", "piece_id": piece["id"], "emplacement_id": store["id"], "quantite": quantite}
        assert (await client.post(MOVES, json=body, headers=manager)).status_code == 201

    await receive(piece["id"], store["id"], 10)
    await out(6)  # 4 left: above the minimum
    await out(1)  # 3: crossing
    await out(1)  # 2: still below, no new alert
    await out(1)
    alerts = await _events(db_session, "inventory.stock.low.v1", piece["id"])
    assert [(a["disponible"], a["a_commander"]) for a in alerts] == [(3, 9)]

    reorder = (await client.get("/api/v1/pieces/a-commander", headers=manager)).json()
    mine = next(r for r in reorder if r["piece_id"] == piece["id"])
    assert (mine["disponible"], mine["a_commander"], mine["cout_estime"]) == (1, 11, 11 * piece["prix_unitaire"])

    await receive(piece["id"], store["id"], 10)  # 11: back above, re-armed
    await out(9)  # 2: a second crossing
    alerts = await _events(db_session, "inventory.stock.low.v1", piece["id"])
    assert [a["disponible"] for a in alerts] == [3, 2]
    assert piece["id"] not in {
        r["piece_id"] for r in (await client.get("/api/v1/pieces", params={"en_alerte": False}, headers=manager)).json()
    }


async def test_an_adjustment_below_what_is_reserved_is_refused(
    client: httpx.AsyncClient,
    manager: Headers,
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    known_interventions: Callable[..., Awaitable[int]],
) -> None:
    piece, store = await make_piece(), await make_emplacement(code="MAG-RES")
    await receive(piece["id"], store["id"], 5)
    iid = await known_interventions(88_001)
    reserved = await client.post(
        f"/api/v1/stock/interventions/{iid}/reservations",
        json={"piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 4},
        headers=manager,
    )
    assert reserved.status_code == 200, reserved.text
    response = await client.post(
        MOVES,
        json={
            "type": "ajustement",
            "piece_id": piece["id"],
            "emplacement_id": store["id"],
            "quantite": 2,
            "motif": "Comptage",
        },
        headers=manager,
    )
    assert response.status_code == 409 and "4 piece" in response.json()["detail"]
    sortie = await client.post(
        MOVES,
        json={"type": "sortie", "piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 2},
        headers=manager,
    )
    assert sortie.status_code == 409 and "4 reserved for other interventions" in sortie.json()["detail"]


async def test_locations(
    client: httpx.AsyncClient, manager: Headers, make_emplacement: Make, make_piece: Make, receive: Make
) -> None:
    van = await make_emplacement(code="VAN-01", type="vehicule", technicien_id=501)
    store = await make_emplacement(code="MAG-X")
    taken = await client.post(
        "/api/v1/stock/emplacements", json={"code": "van-01", "nom": "x", "type": "magasin_site"}, headers=manager
    )
    assert taken.status_code == 409
    not_a_van = await client.post(
        "/api/v1/stock/emplacements",
        json={"code": "MAG-Y", "nom": "x", "type": "magasin_site", "technicien_id": 501},
        headers=manager,
    )
    assert not_a_van.status_code == 422
    vans = (await client.get("/api/v1/stock/emplacements", params={"technicien_id": 501}, headers=manager)).json()
    assert van["id"] in {v["id"] for v in vans} and store["id"] not in {v["id"] for v in vans}

    piece = await make_piece()
    await receive(piece["id"], store["id"], 1)
    assert (await client.delete(f"/api/v1/stock/emplacements/{store['id']}", headers=manager)).status_code == 409
    assert (await client.delete(f"/api/v1/stock/emplacements/{van['id']}", headers=manager)).status_code == 204
    closed = await client.post(
        MOVES,
        json={"type": "entree", "piece_id": piece["id"], "emplacement_id": van["id"], "quantite": 1},
        headers=manager,
    )
    assert closed.status_code == 422
