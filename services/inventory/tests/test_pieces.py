"""The parts catalogue: who may do what, unique references, search, filters, compatible parts, deletion."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from mif_common.testing.standin import StandIn
from mif_inventory.testing import CLIENT_A, Deliver, Headers, Make

URL = "/api/v1/pieces"


async def test_a_manager_creates_reads_and_edits_a_part(client: httpx.AsyncClient, manager: Headers) -> None:
    body = {
        "reference": "ROUL-6204-2RS",
        "nom": "Roulement à billes 6204 2RS",
        "categorie": "Roulements",
        "fabricant": "SKF",
        "unite": "piece",
        "prix_unitaire": 4_550,
        "stock_minimum": 4,
        "stock_maximum": 20,
        "types_equipement": ["Compresseur", "pompe"],
    }
    created = await client.post(URL, json=body, headers=manager)
    assert created.status_code == 201, created.text
    piece = created.json()
    assert created.headers["location"] == f"{URL}/{piece['id']}"
    assert piece["types_equipement"] == ["compresseur", "pompe"]
    assert piece["stock_minimum"] == 4 and piece["prix_unitaire"] == 4_550 and piece["version"] == 1

    edited = await client.put(f"{URL}/{piece['id']}", json={"prix_unitaire": 4_800}, headers=manager)
    assert edited.status_code == 200 and edited.json()["prix_unitaire"] == 4_800 and edited.json()["version"] == 2
    assert (await client.get(f"{URL}/{piece['id']}", headers=manager)).json()["prix_unitaire"] == 4_800


async def test_references_are_unique_whatever_their_case(
    make_piece: Make, client: httpx.AsyncClient, manager: Headers
) -> None:
    first = await make_piece(reference="JOINT-SPI-40")
    again = await client.post(URL, json={"reference": "joint-spi-40", "nom": "Autre"}, headers=manager)
    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    assert f"part {first['id']}" in again.json()["detail"]


async def test_a_maximum_below_the_minimum_is_refused(client: httpx.AsyncClient, manager: Headers) -> None:
    response = await client.post(
        URL, json={"reference": "X-1", "nom": "X", "stock_minimum": 5, "stock_maximum": 2}, headers=manager
    )
    assert response.status_code == 422


async def test_search_filters_and_sort(make_piece: Make, client: httpx.AsyncClient, technicien: Headers) -> None:
    await make_piece(reference="FILT-W712", nom="Filtre à huile W712", fabricant="Mann-Filter", categorie="Filtres")
    await make_piece(reference="FILT-C25", nom="Filtre à air C25", fabricant="Mann-Filter", categorie="Filtres")
    await make_piece(reference="COUR-XPZ", nom="Courroie XPZ 1250", fabricant="Gates", categorie="Courroies")

    found = await client.get(URL, params={"q": "w712"}, headers=technicien)
    assert found.status_code == 200
    assert [p["reference"] for p in found.json()] == ["FILT-W712"]
    assert found.headers["x-total-count"] == "1"

    mann = await client.get(URL, params={"fabricant": "mann-filter", "sort": "-reference"}, headers=technicien)
    assert [p["reference"] for p in mann.json()] == ["FILT-W712", "FILT-C25"]
    bad_sort = await client.get(URL, params={"sort": "couleur"}, headers=technicien)
    assert bad_sort.status_code == 422


async def test_parts_that_fit_an_equipment_by_id_or_by_type(
    make_piece: Make, client: httpx.AsyncClient, technicien: Headers, deliver: Deliver, standin: StandIn
) -> None:
    by_type = await make_piece(types_equipement=["compresseur"])
    by_id = await make_piece(equipement_ids=[4401])
    await make_piece(types_equipement=["pompe"])
    await deliver(
        "assets.equipement.created.v1",
        {
            "equipement_id": 4401,
            "nom": "Compresseur A",
            "type": "Compresseur",
            "localisation": "Atelier",
            "statut": "operationnel",
            "criticite": "standard",
            "pays": "Maroc",
            "version": 1,
            "updated_at": "2026-12-01T08:00:00Z",
        },
    )
    listed = await client.get(URL, params={"equipement_id": 4401}, headers=technicien)
    assert {p["id"] for p in listed.json()} == {by_type["id"], by_id["id"]}

    # An equipment the replica has not heard of yet: assets is asked once, as the caller.
    standin.answer_equipement(4402, type_="compresseur")
    asked = await client.get(URL, params={"equipement_id": 4402}, headers=technicien)
    assert {p["id"] for p in asked.json()} == {by_type["id"]}
    unknown = await client.get(URL, params={"equipement_id": 4403}, headers=technicien)
    assert unknown.status_code == 422


async def test_roles(
    make_piece: Make, client: httpx.AsyncClient, technicien: Headers, client_user: Callable[[int], Headers]
) -> None:
    piece = await make_piece()
    assert (await client.get(f"{URL}/{piece['id']}", headers=technicien)).status_code == 200
    assert (await client.put(f"{URL}/{piece['id']}", json={"nom": "x"}, headers=technicien)).status_code == 403
    assert (await client.post(URL, json={"reference": "T-1", "nom": "T"}, headers=technicien)).status_code == 403
    assert (await client.get(URL, headers=client_user(CLIENT_A))).status_code == 403
    assert (await client.get(f"{URL}/a-commander", headers=technicien)).status_code == 403


async def test_deleting_a_part_hides_it_and_frees_its_reference(
    make_piece: Make, client: httpx.AsyncClient, manager: Headers, make_emplacement: Make, receive: Make
) -> None:
    piece = await make_piece(reference="HUILE-46")
    store = await make_emplacement()
    await receive(piece["id"], store["id"], 3)
    refused = await client.delete(f"{URL}/{piece['id']}", headers=manager)
    assert refused.status_code == 409 and "3 piece on hand" in refused.json()["detail"]

    await client.post(
        "/api/v1/stock/mouvements",
        json={
            "type": "ajustement",
            "piece_id": piece["id"],
            "emplacement_id": store["id"],
            "quantite": 0,
            "motif": "Inventaire annuel : bidons périmés",
        },
        headers=manager,
    )
    assert (await client.delete(f"{URL}/{piece['id']}", headers=manager)).status_code == 204
    assert (await client.get(f"{URL}/{piece['id']}", headers=manager)).status_code == 404
    assert (
        await client.post(URL, json={"reference": "huile-46", "nom": "Huile ISO VG 46"}, headers=manager)
    ).status_code == 201
