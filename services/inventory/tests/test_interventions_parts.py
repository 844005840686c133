"""Parts on an intervention: reserve, consume, return, release; who may; what a client sees; the cost
published to interventions; reservations given back when the intervention ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.testing.standin import StandIn
from mif_interventions.testing import intervention_data
from mif_inventory.testing import CLIENT_A, CLIENT_B, TECH_ID, Deliver, Headers, Make

Known = Callable[..., Awaitable[int]]


def url(iid: int, action: str) -> str:
    return f"/api/v1/stock/interventions/{iid}/{action}"


async def _costs(session: AsyncSession, iid: int) -> list[tuple[int, int]]:
    rows = await session.execute(
        sa.text(
            "SELECT envelope->'data' FROM outbox "
            "WHERE type = 'inventory.intervention.parts_costed.v1' AND subject = :s "
            "ORDER BY (envelope->'data'->>'version')::int"
        ),
        {"s": str(iid)},
    )
    return [(r[0]["version"], r[0]["cout_pieces"]) for r in rows]


async def _stock(client: httpx.AsyncClient, headers: Headers, piece_id: int) -> list[tuple[float, float]]:
    rows = (await client.get("/api/v1/stock", params={"piece_id": piece_id}, headers=headers)).json()
    return [(r["quantite"], r["reservee"]) for r in rows]


async def test_the_assigned_technician_reserves_consumes_and_returns(
    client: httpx.AsyncClient,
    technicien: Headers,
    manager: Headers,
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    known_interventions: Known,
    db_session: AsyncSession,
) -> None:
    piece = await make_piece(prix_unitaire=4_550)
    store = await make_emplacement()
    await receive(piece["id"], store["id"], 10)
    iid = await known_interventions(90_001)
    line: dict[str, Any] = {"piece_id": piece["id"], "emplacement_id": store["id"]}

    reserved = await client.post(url(iid, "reservations"), json={**line, "quantite": 4}, headers=technicien)
    assert reserved.status_code == 200, reserved.text
    assert await _stock(client, manager, piece["id"]) == [(10, 4)]

    consumed = await client.post(url(iid, "consommations"), json={**line, "quantite": 3}, headers=technicien)
    assert consumed.status_code == 200
    body = consumed.json()
    assert body["cout_pieces"] == 3 * 4_550
    assert [(x["reservee"], x["consommee"], x["cout"]) for x in body["lignes"]] == [(1, 3, 13_650)]
    assert await _stock(client, manager, piece["id"]) == [(7, 1)]

    # The price changes: the next consumption costs the new price, the earlier one keeps its own.
    await client.put(f"/api/v1/pieces/{piece['id']}", json={"prix_unitaire": 5_000}, headers=manager)
    await client.post(url(iid, "consommations"), json={**line, "quantite": 2}, headers=technicien)
    assert await _stock(client, manager, piece["id"]) == [(5, 0)]

    returned = await client.post(url(iid, "retours"), json={**line, "quantite": 1}, headers=technicien)
    assert returned.status_code == 200
    # 5 consumed for 23,650: one returned credits the line's average price (4,730).
    assert returned.json()["cout_pieces"] == 23_650 - 4_730
    assert await _stock(client, manager, piece["id"]) == [(6, 0)]
    assert await _costs(db_session, iid) == [(1, 13_650), (2, 23_650), (3, 18_920)]

    too_many = await client.post(url(iid, "retours"), json={**line, "quantite": 5}, headers=technicien)
    assert too_many.status_code == 409 and "Only 4 piece" in too_many.json()["detail"]

    ledger = (await client.get("/api/v1/stock/mouvements", params={"intervention_id": iid}, headers=manager)).json()
    assert [(m["type"], m["quantite"], m["prix_unitaire"]) for m in ledger] == [
        ("sortie", -3, 4_550),
        ("sortie", -2, 5_000),
        ("retour", 1, 5_000),
    ]


async def test_only_the_assigned_technician_or_a_manager_moves_parts(
    client: httpx.AsyncClient,
    technicien: Headers,
    other_technicien: Headers,
    manager: Headers,
    client_user: Callable[[int], Headers],
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    known_interventions: Known,
) -> None:
    piece, store = await make_piece(), await make_emplacement()
    await receive(piece["id"], store["id"], 5)
    iid = await known_interventions(90_002)
    body = {"piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 1}
    assert (await client.post(url(iid, "consommations"), json=body, headers=other_technicien)).status_code == 404
    assert (await client.post(url(iid, "consommations"), json=body, headers=client_user(CLIENT_A))).status_code == 403
    assert (await client.post(url(iid, "consommations"), json=body, headers=manager)).status_code == 200


async def test_parts_move_only_while_the_intervention_is_open_for_them(
    client: httpx.AsyncClient,
    technicien: Headers,
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    known_interventions: Known,
) -> None:
    piece, store = await make_piece(), await make_emplacement()
    await receive(piece["id"], store["id"], 5)
    body = {"piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 1}
    iid = await known_interventions(90_003, statut="cloturee")
    refused = await client.post(url(iid, "consommations"), json=body, headers=technicien)
    assert refused.status_code == 409 and "'cloturee'" in refused.json()["detail"]


async def test_a_client_sees_only_consumed_parts_and_costs_of_its_own_interventions(
    client: httpx.AsyncClient,
    technicien: Headers,
    client_user: Callable[[int], Headers],
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    known_interventions: Known,
) -> None:
    used, reserved_only = await make_piece(), await make_piece()
    store = await make_emplacement()
    for piece in (used, reserved_only):
        await receive(piece["id"], store["id"], 5)
    iid = await known_interventions(90_004, client_id=CLIENT_A)
    await client.post(
        url(iid, "consommations"),
        json={"piece_id": used["id"], "emplacement_id": store["id"], "quantite": 2},
        headers=technicien,
    )
    await client.post(
        url(iid, "reservations"),
        json={"piece_id": reserved_only["id"], "emplacement_id": store["id"], "quantite": 1},
        headers=technicien,
    )

    seen = await client.get(url(iid, "pieces"), headers=client_user(CLIENT_A))
    assert seen.status_code == 200
    assert seen.json() == {
        "intervention_id": iid,
        "lignes": [
            {
                "piece_id": used["id"],
                "reference": used["reference"],
                "nom": used["nom"],
                "unite": "piece",
                "emplacement_id": None,
                "reservee": None,
                "consommee": 2.0,
                "cout": 2 * used["prix_unitaire"],
            }
        ],
        "cout_pieces": 2 * used["prix_unitaire"],
    }
    assert (await client.get(url(iid, "pieces"), headers=client_user(CLIENT_B))).status_code == 404
    full = (await client.get(url(iid, "pieces"), headers=technicien)).json()
    assert len(full["lignes"]) == 2


async def test_a_finished_intervention_gives_its_reservations_back(
    client: httpx.AsyncClient,
    technicien: Headers,
    manager: Headers,
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    known_interventions: Known,
    deliver: Deliver,
    db_session: AsyncSession,
) -> None:
    piece = await make_piece(stock_minimum=3)
    store = await make_emplacement()
    await receive(piece["id"], store["id"], 5)
    iid = await known_interventions(90_005)
    await client.post(
        url(iid, "reservations"),
        json={"piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 3},
        headers=technicien,
    )
    assert await _stock(client, manager, piece["id"]) == [(5, 3)]
    assert (await client.get(f"/api/v1/pieces/{piece['id']}", headers=manager)).json()["en_alerte"] is True

    closed = intervention_data(iid, statut="cloturee", technicien_id=TECH_ID, client_id=CLIENT_A, equipement_id=9)
    assert await deliver("interventions.intervention.closed.v1", closed, event_id="closed-90005")
    assert not await deliver("interventions.intervention.closed.v1", closed, event_id="closed-90005")
    assert await _stock(client, manager, piece["id"]) == [(5, 0)]
    assert (await client.get(f"/api/v1/pieces/{piece['id']}", headers=manager)).json()["en_alerte"] is False
    lines = (await client.get(url(iid, "pieces"), headers=manager)).json()["lignes"]
    assert lines == []


async def test_an_intervention_unknown_here_is_asked_to_interventions_as_the_caller(
    client: httpx.AsyncClient,
    technicien: Headers,
    make_piece: Make,
    make_emplacement: Make,
    receive: Make,
    standin: StandIn,
) -> None:
    piece, store = await make_piece(), await make_emplacement()
    await receive(piece["id"], store["id"], 2)
    standin.answer(90_006, statut="en_cours", technicien_id=TECH_ID, client_id=CLIENT_A)
    body = {"piece_id": piece["id"], "emplacement_id": store["id"], "quantite": 1}
    consumed = await client.post(url(90_006, "consommations"), json=body, headers=technicien)
    assert consumed.status_code == 200, consumed.text
    assert standin.asked[-1] == (90_006, technicien["Authorization"])
    assert (await client.post(url(90_007, "consommations"), json=body, headers=technicien)).status_code == 404
