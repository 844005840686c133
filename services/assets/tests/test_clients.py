"""Client organisations: CRUD, contract fields, uniqueness, deactivation, roles and organisation scoping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import Headers, Make, outbox_envelopes


def full_client(**overrides: Any) -> dict[str, Any]:
    body = {
        "nom_entreprise": "Ciments du Maroc",
        "type_client": "entreprise",
        "secteur_activite": "Industrie",
        "nom_contact": "Nadia Benali",
        "email": "nadia@ciments.ma",
        "telephone": "+212 522-000-111",
        "adresse": "Zone industrielle\nLot 12",
        "ville": "Casablanca",
        "niveau_service": "premium",
        "contrat_debut": "2025-01-01",
        "contrat_fin": "2027-12-31",
        "type_contrat": "maintenance préventive",
    }
    body.update(overrides)
    return body


async def test_manager_creates_reads_updates_and_deactivates_a_client(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession
) -> None:
    created = await client.post("/api/v1/clients/", json=full_client(), headers=manager)
    assert created.status_code == 201, created.text
    body = created.json()
    cid = body["id"]
    assert created.headers["location"] == f"/api/v1/clients/{cid}"
    assert body["pays"] == "Maroc" and body["is_active"] is True
    assert body["contrat_fin"] == "2027-12-31" and body["adresse"] == "Zone industrielle\nLot 12"
    assert (await client.get(f"/api/v1/clients/{cid}", headers=manager)).json() == body

    updated = await client.put(
        f"/api/v1/clients/{cid}", json={"niveau_service": "basique", "ville": None}, headers=manager
    )
    assert updated.status_code == 200
    assert updated.json()["niveau_service"] == "basique" and updated.json()["ville"] is None
    assert updated.json()["nom_entreprise"] == "Ciments du Maroc"  # untouched

    assert (await client.delete(f"/api/v1/clients/{cid}", headers=manager)).status_code == 204
    assert (await client.delete(f"/api/v1/clients/{cid}", headers=manager)).status_code == 204  # idempotent
    assert (await client.get(f"/api/v1/clients/{cid}", headers=manager)).json()["is_active"] is False
    reactivated = await client.put(f"/api/v1/clients/{cid}", json={"is_active": True}, headers=manager)
    assert reactivated.json()["is_active"] is True

    events = await outbox_envelopes(db_session, entity="client", subject=cid)
    assert [e["type"] for e in events] == [
        "assets.client.created.v1",
        "assets.client.updated.v1",
        "assets.client.deactivated.v1",
        "assets.client.updated.v1",
    ]
    assert [e["data"]["version"] for e in events] == [1, 2, 3, 4]
    assert events[1]["data"]["changed"] == ["niveau_service", "ville"]
    assert events[2]["data"]["is_active"] is False and events[3]["data"]["is_active"] is True
    assert events[0]["data"]["nom_entreprise"] == "Ciments du Maroc"
    assert events[0]["source"] == "/mif/assets" and events[0]["specversion"] == "1.0"


async def test_an_update_that_changes_nothing_publishes_nothing(
    client: httpx.AsyncClient, manager: Headers, make_client: Make, db_session: AsyncSession
) -> None:
    made = await make_client(ville="Rabat")
    same = await client.put(f"/api/v1/clients/{made['id']}", json={"ville": "Rabat"}, headers=manager)
    assert same.status_code == 200
    assert len(await outbox_envelopes(db_session, entity="client", subject=made["id"])) == 1


async def test_client_names_are_unique_case_insensitively(
    client: httpx.AsyncClient, manager: Headers, make_client: Make
) -> None:
    first = await make_client(nom_entreprise="OCP Safi")
    other = await make_client(nom_entreprise="Managem")
    duplicate = await client.post("/api/v1/clients", json={"nom_entreprise": "  ocp SAFI "}, headers=manager)
    assert duplicate.status_code == 409
    problem = duplicate.json()
    assert problem["detail"] == (
        f"A client organisation named 'OCP Safi' already exists (id {first['id']}); choose another name."
    )
    assert problem["errors"] == [{"field": "nom_entreprise", "message": "already used by another client organisation"}]
    renamed = await client.put(f"/api/v1/clients/{other['id']}", json={"nom_entreprise": "Ocp safi"}, headers=manager)
    assert renamed.status_code == 409
    own_case = await client.put(f"/api/v1/clients/{first['id']}", json={"nom_entreprise": "OCP SAFI"}, headers=manager)
    assert own_case.status_code == 200


async def test_contract_end_must_follow_its_start(
    client: httpx.AsyncClient, manager: Headers, make_client: Make, db_session: AsyncSession
) -> None:
    before = await db_session.scalar(text("SELECT count(*) FROM client"))
    for fin in ("2025-01-01", "2024-06-30"):
        response = await client.post(
            "/api/v1/clients", json=full_client(contrat_debut="2025-01-01", contrat_fin=fin), headers=manager
        )
        assert response.status_code == 422
        assert response.json()["errors"] == [{"field": "contrat_fin", "message": "must be after contrat_debut"}]
        assert "contrat_fin" in response.json()["detail"]
    assert await db_session.scalar(text("SELECT count(*) FROM client")) == before
    made = await make_client(contrat_debut="2025-01-01")
    late = await client.put(f"/api/v1/clients/{made['id']}", json={"contrat_fin": "2024-12-31"}, headers=manager)
    assert late.status_code == 422


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"type_client": "multinationale"}, "type_client"),
        ({"niveau_service": "gold"}, "niveau_service"),
        ({"email": "not-an-email"}, "email"),
        ({"telephone": "call me"}, "telephone"),
        ({"nom_entreprise": "   "}, "nom_entreprise"),
        ({"nom_entreprise": "x" * 201}, "nom_entreprise"),
        ({"nom_entreprise": "Tab\tname"}, "nom_entreprise"),
        ({"contrat_debut": "2025-02-30"}, "contrat_debut"),
        ({"pays": None}, "pays"),
        ({"is_active": False}, "is_active"),  # creation always makes an active client
    ],
)
async def test_client_validation_names_the_field(
    client: httpx.AsyncClient, manager: Headers, overrides: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/clients", json=full_client(**overrides), headers=manager)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("field", ["nom_entreprise", "type_client", "niveau_service", "pays", "is_active"])
async def test_required_fields_cannot_be_cleared(
    client: httpx.AsyncClient, manager: Headers, make_client: Make, field: str
) -> None:
    made = await make_client()
    response = await client.put(f"/api/v1/clients/{made['id']}", json={field: None}, headers=manager)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_blank_optional_text_means_no_value(client: httpx.AsyncClient, manager: Headers) -> None:
    response = await client.post(
        "/api/v1/clients", json={"nom_entreprise": "Forms Inc", "email": "", "ville": "  "}, headers=manager
    )
    assert response.status_code == 201
    assert response.json()["email"] is None and response.json()["ville"] is None


# (method, path, body) -> expected status per role; `{id}` is an existing client.
CLIENT_ROUTES: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/api/v1/clients", None, {"admin": 200, "responsable": 200, "technicien": 403, "client": 200}),
    ("GET", "/api/v1/clients/{id}", None, {"admin": 200, "responsable": 200, "technicien": 403, "client": 200}),
    (
        "POST",
        "/api/v1/clients",
        {"nom_entreprise": "Nouvelle"},
        {"admin": 201, "responsable": 201, "technicien": 403, "client": 403},
    ),
    (
        "PUT",
        "/api/v1/clients/{id}",
        {"ville": "Fès"},
        {"admin": 200, "responsable": 200, "technicien": 403, "client": 403},
    ),
    ("DELETE", "/api/v1/clients/{id}", None, {"admin": 204, "responsable": 204, "technicien": 403, "client": 403}),
]


@pytest.mark.parametrize("role", ["admin", "responsable", "technicien", "client"])
@pytest.mark.parametrize(("method", "path", "body", "expected"), CLIENT_ROUTES)
async def test_client_role_matrix(
    client: httpx.AsyncClient,
    make_client: Make,
    auth_headers: Callable[..., Headers],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: dict[str, int],
    role: str,
) -> None:
    own = await make_client()
    headers = auth_headers(role, user_id=5, client_id=own["id"] if role == "client" else None)
    response = await client.request(method, path.replace("{id}", str(own["id"])), json=body, headers=headers)
    assert response.status_code == expected[role], response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


async def test_unauthenticated_calls_are_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/clients")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_client_user_sees_only_its_own_organisation(
    client: httpx.AsyncClient, make_client: Make, client_user: Callable[[int], Headers], manager: Headers
) -> None:
    a = await make_client(nom_entreprise="Alpha Textile", ville="Tanger")
    b = await make_client(nom_entreprise="Beta Agro", ville="Tanger")
    as_a = client_user(a["id"])
    listing = await client.get("/api/v1/clients?ville=tanger", headers=as_a)
    assert [c["id"] for c in listing.json()] == [a["id"]]
    assert listing.headers["x-total-count"] == "1"
    assert (await client.get(f"/api/v1/clients/{a['id']}", headers=as_a)).status_code == 200
    hidden = await client.get(f"/api/v1/clients/{b['id']}", headers=as_a)
    missing = await client.get("/api/v1/clients/987654321", headers=as_a)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == f"No client organisation with id {b['id']}."
    assert (await client.get("/api/v1/clients?q=beta", headers=as_a)).json() == []
    assert len((await client.get("/api/v1/clients?ville=Tanger", headers=manager)).json()) == 2


async def test_client_token_without_an_organisation_is_refused(
    client: httpx.AsyncClient, auth_headers: Callable[..., Headers]
) -> None:
    response = await client.get("/api/v1/clients", headers=auth_headers("client", user_id=9))
    assert response.status_code == 403
    assert "not linked to an organisation" in response.json()["detail"]


async def test_client_list_filters_search_sort_and_pages(
    client: httpx.AsyncClient, manager: Headers, make_client: Make
) -> None:
    await make_client(nom_entreprise="Zeta Mines", niveau_service="premium", ville="Marrakech")
    await make_client(nom_entreprise="Atlas Froid", niveau_service="premium", nom_contact="Youssef")
    gone = await make_client(nom_entreprise="Gamma 100% Bio", niveau_service="basique")
    await client.delete(f"/api/v1/clients/{gone['id']}", headers=manager)

    premium = await client.get("/api/v1/clients?niveau_service=premium&sort=nom_entreprise", headers=manager)
    assert [c["nom_entreprise"] for c in premium.json()] == ["Atlas Froid", "Zeta Mines"]
    inactive = await client.get("/api/v1/clients?is_active=false", headers=manager)
    assert [c["id"] for c in inactive.json()] == [gone["id"]]
    assert [c["nom_entreprise"] for c in (await client.get("/api/v1/clients?q=youss", headers=manager)).json()] == [
        "Atlas Froid"
    ]
    # LIKE wildcards in `q` are literal characters.
    assert [c["id"] for c in (await client.get("/api/v1/clients?q=100%25", headers=manager)).json()] == [gone["id"]]
    assert (await client.get("/api/v1/clients?q=%25%25", headers=manager)).json() == []
    page = await client.get("/api/v1/clients?limit=2&offset=1&sort=-nom_entreprise", headers=manager)
    assert [c["nom_entreprise"] for c in page.json()] == ["Gamma 100% Bio", "Atlas Froid"]
    assert page.headers["x-total-count"] == "3"
    assert 'rel="prev"' in page.headers["link"] and 'rel="next"' not in page.headers["link"]
