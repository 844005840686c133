"""Equipment: CRUD, validation, unique names and serial numbers, statut history, deletion guard,
lists (filters, search, sort, paging, indexes), roles and organisation scoping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import Deliver, Headers, Make, outbox_envelopes
from mif_interventions.testing import intervention_data

MANAGER_ID = 1002  # the `manager` fixture's user id


def full_equipement(**overrides: Any) -> dict[str, Any]:
    body = {
        "nom": "Compresseur Atlas GA37",
        "type": "compresseur",
        "localisation": "Usine Ain Sebaa - Hall 2",
        "numero_serie": "AII-482913",
        "marque": "Atlas Copco",
        "modele": "GA37 VSD",
        "statut": "operationnel",
        "criticite": "critique",
        "frequence_entretien": 90,
        "date_mise_en_service": "2023-03-15",
        "date_fin_garantie": "2026-03-15",
    }
    body.update(overrides)
    return body


async def count(db_session: AsyncSession, table: str) -> int:
    return int(await db_session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


async def test_manager_creates_reads_updates_and_deletes_an_equipment(
    client: httpx.AsyncClient, manager: Headers, make_client: Make, db_session: AsyncSession
) -> None:
    owner = await make_client()
    created = await client.post("/api/v1/equipements/", json=full_equipement(client_id=owner["id"]), headers=manager)
    assert created.status_code == 201, created.text
    body = created.json()
    eid = body["id"]
    assert created.headers["location"] == f"/api/v1/equipements/{eid}"
    assert {k: body[k] for k in full_equipement()} == full_equipement()
    assert body["client_id"] == owner["id"]
    assert (await client.get(f"/api/v1/equipements/{eid}", headers=manager)).json() == body

    updated = await client.put(
        f"/api/v1/equipements/{eid}", json={"localisation": "Hall 3", "marque": None}, headers=manager
    )
    assert updated.status_code == 200
    assert updated.json()["localisation"] == "Hall 3" and updated.json()["marque"] is None

    assert (await client.delete(f"/api/v1/equipements/{eid}", headers=manager)).status_code == 204
    assert (await client.get(f"/api/v1/equipements/{eid}", headers=manager)).status_code == 404
    assert (await client.delete(f"/api/v1/equipements/{eid}", headers=manager)).status_code == 404

    events = await outbox_envelopes(db_session, entity="equipement", subject=eid)
    assert [e["type"] for e in events] == [
        "assets.equipement.created.v1",
        "assets.equipement.updated.v1",
        "assets.equipement.deleted.v1",
    ]
    assert events[0]["data"]["nom"] == "Compresseur Atlas GA37" and events[0]["data"]["client_id"] == owner["id"]
    assert events[1]["data"]["changed"] == ["localisation", "marque"]
    assert [e["data"]["version"] for e in events] == [1, 2, 3]


async def test_the_contract_minimum_creates_an_equipment(client: httpx.AsyncClient, manager: Headers) -> None:
    response = await client.post(
        "/api/v1/equipements",
        json={"nom": "Pompe P-12", "type": "pompe", "localisation": "Station 1", "frequence_entretien": 30},
        headers=manager,
    )
    assert response.status_code == 201
    body = response.json()
    assert body["statut"] == "operationnel" and body["criticite"] == "standard"
    assert body["client_id"] is None and body["numero_serie"] is None


async def test_names_and_serial_numbers_are_unique(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, db_session: AsyncSession
) -> None:
    first = await make_equipement(nom="Chaudière C1", numero_serie="SN-001")
    before = await count(db_session, "equipement")
    same_name = await client.post("/api/v1/equipements", json=full_equipement(nom="chaudière c1 "), headers=manager)
    assert same_name.status_code == 409
    assert same_name.json()["detail"] == f"An equipment named 'Chaudière C1' already exists (id {first['id']})."
    assert same_name.json()["errors"] == [{"field": "nom", "message": "already used by another equipment"}]

    both = await client.post(
        "/api/v1/equipements", json=full_equipement(nom="CHAUDIÈRE C1", numero_serie="sn-001"), headers=manager
    )
    assert both.status_code == 409
    assert [e["field"] for e in both.json()["errors"]] == ["nom", "numero_serie"]
    assert "the serial number 'SN-001' is already used by 'Chaudière C1'" in both.json()["detail"]
    assert await count(db_session, "equipement") == before

    other = await make_equipement()
    rename = await client.put(f"/api/v1/equipements/{other['id']}", json={"numero_serie": "SN-001"}, headers=manager)
    assert rename.status_code == 409
    # Serial numbers are unique only when given.
    assert (await make_equipement(numero_serie=None))["numero_serie"] is None
    assert (await make_equipement(numero_serie=""))["numero_serie"] is None


async def test_client_must_exist_and_be_active(
    client: httpx.AsyncClient, manager: Headers, make_client: Make, make_equipement: Make, db_session: AsyncSession
) -> None:
    before = await count(db_session, "equipement")
    unknown = await client.post("/api/v1/equipements", json=full_equipement(client_id=987654), headers=manager)
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("No client organisation with id 987654")
    assert unknown.json()["errors"] == [{"field": "client_id", "message": "unknown client organisation"}]
    closed = await make_client(nom_entreprise="Fermée SARL")
    await client.delete(f"/api/v1/clients/{closed['id']}", headers=manager)
    inactive = await client.post("/api/v1/equipements", json=full_equipement(client_id=closed["id"]), headers=manager)
    assert inactive.status_code == 422
    assert "'Fermée SARL'" in inactive.json()["detail"] and "deactivated" in inactive.json()["detail"]
    assert await count(db_session, "equipement") == before
    moved = await make_equipement()
    refused = await client.put(f"/api/v1/equipements/{moved['id']}", json={"client_id": closed["id"]}, headers=manager)
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"statut": "cassé"}, "statut"),
        ({"criticite": "haute"}, "criticite"),
        ({"frequence_entretien": 0}, "frequence_entretien"),
        ({"frequence_entretien": -7}, "frequence_entretien"),
        ({"frequence_entretien": 3651}, "frequence_entretien"),
        ({"frequence_entretien": 10**30}, "frequence_entretien"),
        ({"frequence_entretien": 1.5}, "frequence_entretien"),
        ({"frequence_entretien": "biennal"}, "frequence_entretien"),
        ({"client_id": 0}, "client_id"),
        ({"client_id": 2**63}, "client_id"),
        ({"nom": ""}, "nom"),
        ({"nom": "x" * 201}, "nom"),
        ({"nom": "line\nbreak"}, "nom"),
        ({"type": None}, "type"),
        ({"localisation": 12}, "localisation"),
        ({"date_fin_garantie": "2020-01-01"}, "date_fin_garantie"),
        ({"date_mise_en_service": "15/03/2023"}, "date_mise_en_service"),
        ({"motif": "création"}, "motif"),  # motif goes with a statut change (PUT), not a creation
    ],
)
async def test_equipment_validation_names_the_field(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession, overrides: dict[str, Any], field: str
) -> None:
    before = await count(db_session, "equipement")
    response = await client.post("/api/v1/equipements", json=full_equipement(**overrides), headers=manager)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert await count(db_session, "equipement") == before


@pytest.mark.parametrize("field", ["nom", "type", "localisation", "statut", "criticite"])
async def test_required_equipment_fields_cannot_be_cleared(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, field: str
) -> None:
    made = await make_equipement()
    response = await client.put(f"/api/v1/equipements/{made['id']}", json={field: None}, headers=manager)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_every_statut_transition_is_recorded_with_who_when_and_why(
    client: httpx.AsyncClient, manager: Headers, technicien: Headers, make_equipement: Make, db_session: AsyncSession
) -> None:
    made = await make_equipement()
    eid = made["id"]
    down = await client.put(
        f"/api/v1/equipements/{eid}", json={"statut": "panne", "motif": "Fuite d'huile"}, headers=manager
    )
    assert down.status_code == 200 and down.json()["statut"] == "panne"
    same = await client.put(f"/api/v1/equipements/{eid}", json={"statut": "panne", "motif": "encore"}, headers=manager)
    assert same.status_code == 200
    both = await client.put(
        f"/api/v1/equipements/{eid}", json={"statut": "retire", "criticite": "important"}, headers=manager
    )
    assert both.json()["statut"] == "retire" and both.json()["criticite"] == "important"

    history = await client.get(f"/api/v1/equipements/{eid}/historique-statut/", headers=technicien)
    assert history.status_code == 200
    rows = history.json()
    assert [(r["ancien_statut"], r["nouveau_statut"], r["motif"]) for r in rows] == [
        (None, "operationnel", "Création"),
        ("operationnel", "panne", "Fuite d'huile"),
        ("panne", "retire", None),
    ]
    assert {r["source"] for r in rows} == {"api"} and {r["user_id"] for r in rows} == {MANAGER_ID}
    assert all(r["horodatage"] and r["event_id"] is None for r in rows)
    assert history.headers["x-total-count"] == "3"
    newest_first = await client.get(f"/api/v1/equipements/{eid}/historique-statut?sort=-id&limit=1", headers=manager)
    assert newest_first.json()[0]["nouveau_statut"] == "retire"

    events = await outbox_envelopes(db_session, entity="equipement", subject=eid)
    assert [e["type"].split(".")[2] for e in events] == [
        "created",
        "status_changed",
        "updated",
        "status_changed",
        "retired",
    ]
    changed = events[1]["data"]
    assert changed["ancien_statut"] == "operationnel" and changed["statut"] == "panne"
    assert changed["motif"] == "Fuite d'huile" and changed["source"] == "api" and changed["user_id"] == MANAGER_ID
    assert events[4]["data"]["ancien_statut"] == "panne"
    assert [e["data"]["version"] for e in events] == [1, 2, 3, 4, 4]


async def test_status_history_is_append_only(make_equipement: Make, db_session: AsyncSession) -> None:
    await make_equipement()
    with pytest.raises(DBAPIError, match="append-only"):
        async with db_session.begin_nested():
            await db_session.execute(text("UPDATE equipement_statut_historique SET motif = 'rewritten'"))
    with pytest.raises(DBAPIError, match="append-only"):
        async with db_session.begin_nested():
            await db_session.execute(text("DELETE FROM equipement_statut_historique"))


async def test_deletion_is_refused_while_interventions_reference_the_equipment(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, deliver: Deliver, db_session: AsyncSession
) -> None:
    made = await make_equipement(nom="Groupe froid GF-2")
    await deliver("created", **intervention_data(501, "ouverte", equipement_id=made["id"]))
    await deliver("closed", **intervention_data(501, "cloturee", equipement_id=made["id"]))
    refused = await client.delete(f"/api/v1/equipements/{made['id']}", headers=manager)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["detail"] == (
        "The equipment 'Groupe froid GF-2' cannot be deleted: 1 intervention(s) reference it. "
        "Set its statut to 'retire' to take it out of service."
    )
    assert problem["references"] == 1
    assert (await client.get(f"/api/v1/equipements/{made['id']}", headers=manager)).status_code == 200
    assert not [
        e for e in await outbox_envelopes(db_session, entity="equipement", subject=made["id"]) if "deleted" in e["type"]
    ]
    retired = await client.put(
        f"/api/v1/equipements/{made['id']}", json={"statut": "retire", "motif": "Remplacé"}, headers=manager
    )
    assert retired.json()["statut"] == "retire"


async def test_equipment_lists_filter_search_sort_and_page(
    client: httpx.AsyncClient, technicien: Headers, make_client: Make, make_equipement: Make
) -> None:
    owner = await make_client()
    await make_equipement(nom="Pompe A", type="Pompe", localisation="Hall 1", criticite="standard", marque="Grundfos")
    await make_equipement(
        nom="Pompe B", type="pompe", localisation="Hall 2", criticite="critique", statut="panne", client_id=owner["id"]
    )
    await make_equipement(nom="Four F1", type="four", localisation="hall 1", criticite="important", numero_serie="X_9")
    await make_equipement(nom="Tour T1", type="tour", localisation="Hall 3", criticite="non_critique", statut="retire")

    async def names(query: str) -> list[str]:
        response = await client.get(f"/api/v1/equipements?{query}", headers=technicien)
        assert response.status_code == 200, response.text
        return [e["nom"] for e in response.json()]

    assert await names("type=POMPE&sort=nom") == ["Pompe A", "Pompe B"]
    assert await names("localisation=HALL 1&sort=nom") == ["Four F1", "Pompe A"]
    assert await names("statut=panne&statut=retire&sort=nom") == ["Pompe B", "Tour T1"]
    assert await names("criticite=critique") == ["Pompe B"]
    assert await names(f"client_id={owner['id']}") == ["Pompe B"]
    assert await names("q=grundf") == ["Pompe A"]
    assert await names("q=x_9") == ["Four F1"]
    assert await names("q=x%25") == []  # a literal '%', not a wildcard
    assert await names("sort=criticite") == ["Pompe B", "Four F1", "Pompe A", "Tour T1"]
    assert await names("sort=-criticite,nom") == ["Tour T1", "Pompe A", "Four F1", "Pompe B"]
    page = await client.get("/api/v1/equipements?sort=-nom&limit=2&offset=2", headers=technicien)
    assert [e["nom"] for e in page.json()] == ["Pompe A", "Four F1"]
    assert page.headers["x-total-count"] == "4"
    assert 'rel="first"' in page.headers["link"] and 'rel="next"' not in page.headers["link"]


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("statut = 'panne'", "ix_equipement_statut"),
        ("criticite = 'critique'", "ix_equipement_criticite"),
        ("client_id = 3", "ix_equipement_client_id_statut"),
        ("lower(type) = 'pompe'", "ix_equipement_type_lower"),
        ("lower(localisation) = 'hall 1'", "ix_equipement_localisation_lower"),
        (
            "(nom || ' ' || type || ' ' || localisation || ' ' || coalesce(marque, '') || ' ' || coalesce(modele, '')"
            " || ' ' || coalesce(numero_serie, '')) ILIKE '%grundfos%'",
            "ix_equipement_search_trgm",
        ),
        ("lower(nom) = 'pompe a'", "uq_equipement_nom_lower"),
    ],
)
async def test_list_filters_are_served_by_indexes(db_session: AsyncSession, where: str, index: str) -> None:
    async with db_session.begin_nested():
        await db_session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0] for row in await db_session.execute(text(f"EXPLAIN SELECT id FROM equipement WHERE {where}"))
        )
    assert index in plan, plan


# (method, path, body) -> expected status per role; `{id}` is an equipment of the caller's organisation.
EQUIPEMENT_ROUTES: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/api/v1/equipements", None, {"admin": 200, "responsable": 200, "technicien": 200, "client": 200}),
    ("GET", "/api/v1/equipements/{id}", None, {"admin": 200, "responsable": 200, "technicien": 200, "client": 200}),
    (
        "GET",
        "/api/v1/equipements/{id}/historique-statut",
        None,
        {"admin": 200, "responsable": 200, "technicien": 200, "client": 200},
    ),
    (
        "POST",
        "/api/v1/equipements",
        {"nom": "Neuf", "type": "pompe", "localisation": "Hall 9"},
        {"admin": 201, "responsable": 201, "technicien": 403, "client": 403},
    ),
    (
        "PUT",
        "/api/v1/equipements/{id}",
        {"statut": "maintenance"},
        {"admin": 200, "responsable": 200, "technicien": 403, "client": 403},
    ),
    (
        "DELETE",
        "/api/v1/equipements/{id}",
        None,
        {"admin": 204, "responsable": 204, "technicien": 403, "client": 403},
    ),
]


@pytest.mark.parametrize("role", ["admin", "responsable", "technicien", "client"])
@pytest.mark.parametrize(("method", "path", "body", "expected"), EQUIPEMENT_ROUTES)
async def test_equipment_role_matrix(
    client: httpx.AsyncClient,
    make_client: Make,
    make_equipement: Make,
    auth_headers: Callable[..., Headers],
    db_session: AsyncSession,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: dict[str, int],
    role: str,
) -> None:
    own = await make_client()
    made = await make_equipement(client_id=own["id"])
    before = await count(db_session, "outbox")
    headers = auth_headers(role, user_id=5, client_id=own["id"] if role == "client" else None)
    response = await client.request(method, path.replace("{id}", str(made["id"])), json=body, headers=headers)
    assert response.status_code == expected[role], response.text
    if response.status_code == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert await count(db_session, "outbox") == before  # a refused write writes nothing


async def test_each_client_user_sees_only_its_organisations_equipment(
    client: httpx.AsyncClient,
    make_client: Make,
    make_equipement: Make,
    client_user: Callable[[int], Headers],
    technicien: Headers,
) -> None:
    a, b = await make_client(), await make_client()
    a1 = await make_equipement(client_id=a["id"], nom="A-1")
    a2 = await make_equipement(client_id=a["id"], nom="A-2", statut="panne")
    b1 = await make_equipement(client_id=b["id"], nom="B-1")
    unowned = await make_equipement(nom="MIF-1")
    for me, mine, theirs in ((a, [a1, a2], [b1, unowned]), (b, [b1], [a1, a2, unowned])):
        headers = client_user(me["id"])
        listing = await client.get("/api/v1/equipements?sort=nom", headers=headers)
        assert [e["id"] for e in listing.json()] == [e["id"] for e in mine]
        assert listing.headers["x-total-count"] == str(len(mine))
        for other in theirs:
            for path in (f"/api/v1/equipements/{other['id']}", f"/api/v1/equipements/{other['id']}/historique-statut"):
                hidden = await client.get(path, headers=headers)
                assert hidden.status_code == 404
                assert hidden.json()["detail"] == f"No equipment with id {other['id']}."
        # Filters cannot widen the scope.
        other_org = b if me is a else a
        assert (await client.get(f"/api/v1/equipements?client_id={other_org['id']}", headers=headers)).json() == []
        assert (await client.get("/api/v1/equipements?q=MIF", headers=headers)).json() == []
    everything = await client.get("/api/v1/equipements", headers=technicien)
    assert {a1["id"], a2["id"], b1["id"], unowned["id"]} <= {e["id"] for e in everything.json()}
    writes = await client.put(f"/api/v1/equipements/{a1['id']}", json={"nom": "x"}, headers=client_user(a["id"]))
    assert writes.status_code == 403
