"""What a client can send wrong is a 422 problem+json, never a 500, and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mif_inventory.testing import Headers, Make


@pytest.mark.parametrize(
    "body",
    [
        {"unite": None},
        {"reference": None},
        {"prix_unitaire": None},
        {"stock_minimum": None},
        {"types_equipement": None},
        {"prix_unitaire": -1},
        {"prix_unitaire": 10**13},
        {"stock_minimum": 10**12},
        {"stock_maximum": 0.0005},
        {"equipement_ids": [0]},
        {"equipement_ids": [2**63]},
        {"unite": "tonneau"},
        {"couleur": "bleu"},
        {"nom": "deux\nlignes"},
    ],
)
async def test_bad_part_edits_are_422(
    client: httpx.AsyncClient, manager: Headers, make_piece: Make, body: dict[str, Any]
) -> None:
    piece = await make_piece()
    response = await client.put(f"/api/v1/pieces/{piece['id']}", json=body, headers=manager)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/api/v1/pieces/{piece['id']}", headers=manager)).json() == piece


@pytest.mark.parametrize("body", [{"code": None}, {"nom": None}, {"is_active": None}, {"technicien_id": 0}])
async def test_bad_location_edits_are_422(
    client: httpx.AsyncClient, manager: Headers, make_emplacement: Make, body: dict[str, Any]
) -> None:
    emplacement = await make_emplacement()
    response = await client.put(f"/api/v1/stock/emplacements/{emplacement['id']}", json=body, headers=manager)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/pieces/0",
        "/api/v1/pieces/9223372036854775808",
        "/api/v1/stock/interventions/-1/pieces",
        "/api/v1/stock?piece_id=abc",
        "/api/v1/stock/mouvements?depuis=10000-01-01",
        "/api/v1/stock/mouvements?type=vol",
        "/api/v1/pieces?equipement_id=0",
        "/api/v1/pieces?sort=prix_unitaire,couleur",
    ],
)
async def test_bad_reads_are_422(client: httpx.AsyncClient, manager: Headers, path: str) -> None:
    response = await client.get(path, headers=manager)
    assert response.status_code == 422, response.text
