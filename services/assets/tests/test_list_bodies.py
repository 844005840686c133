"""The equipment and client lists (one compiled statement on the asyncpg connection, rows written by orjson;
a search finds its matches first) answer byte for byte what the previous implementation answered: ORM
entities, `Model.model_validate`, `jsonable_encoder`, a count and a page. Compared on awkward rows (accents,
control characters, None, microseconds) for filters, sorts, searches, pages past the end and a client
user's scope."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.api import _CLIENT_SORT, _EQUIPEMENT_SORT
from mif_assets.models import CLIENT_SEARCH_SQL, EQUIPEMENT_SEARCH_SQL, Client, Equipement
from mif_assets.schemas import ClientOut, EquipementOut
from mif_assets.testing import Headers, Make
from mif_common.listing import like_pattern
from mif_common.pagination import PageParams, fetch_page, order_by

AWKWARD = 'Tab\tquote" back\\slash é ü ß 😀 \u2028'

# --- the previous implementation, kept as the reference ----------------------------------------------------


def old_equipements_query(params: dict[str, list[str]], only_client_id: int | None, q: str | None) -> sa.Select[Any]:
    query = sa.select(Equipement)
    if only_client_id is not None:
        query = query.where(Equipement.client_id == only_client_id)
    if params.get("statut"):
        query = query.where(Equipement.statut.in_(params["statut"]))
    if params.get("criticite"):
        query = query.where(Equipement.criticite.in_(params["criticite"]))
    if "client_id" in params:
        query = query.where(Equipement.client_id == int(params["client_id"][0]))
    if "type" in params:
        query = query.where(sa.func.lower(Equipement.type) == params["type"][0].lower())
    if "localisation" in params:
        query = query.where(sa.func.lower(Equipement.localisation) == params["localisation"][0].lower())
    if q is not None:
        query = query.where(sa.literal_column(EQUIPEMENT_SEARCH_SQL).ilike(like_pattern(q), escape="\\"))
    return query


def old_clients_query(params: dict[str, list[str]], only_client_id: int | None, q: str | None) -> sa.Select[Any]:
    query = sa.select(Client)
    if only_client_id is not None:
        query = query.where(Client.id == only_client_id)
    if "is_active" in params:
        query = query.where(Client.is_active.is_(params["is_active"][0] == "true"))
    if "type_client" in params:
        query = query.where(Client.type_client == params["type_client"][0])
    if "niveau_service" in params:
        query = query.where(Client.niveau_service == params["niveau_service"][0])
    if "ville" in params:
        query = query.where(sa.func.lower(Client.ville) == params["ville"][0].lower())
    if q is not None:
        query = query.where(sa.literal_column(CLIENT_SEARCH_SQL).ilike(like_pattern(q), escape="\\"))
    return query


async def old_answer(
    session: AsyncSession,
    query_string: str,
    build: Callable[[dict[str, list[str]], int | None, str | None], sa.Select[Any]],
    model: type[BaseModel],
    sort_fields: dict[str, Any],
    default: Sequence[Any],
    only_client_id: int | None,
) -> tuple[bytes, int]:
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    q = params.get("q", [""])[0].strip() or None
    page = PageParams(
        limit=int(params.get("limit", ["500"])[0]),
        offset=int(params.get("offset", ["0"])[0]),
        sort=params.get("sort", [None])[0],
        q=q,
    )
    query = build(params, only_client_id, q).order_by(*order_by(page.sort, sort_fields, default=default))
    rows, total = await fetch_page(session, query, page)
    return bytes(JSONResponse(jsonable_encoder([model.model_validate(r) for r in rows])).body), total


# --- the comparison ------------------------------------------------------------------------------------------

EQUIPEMENT_QUERIES = [
    "",
    "limit=50",
    "limit=3&offset=2",
    "sort=-date_creation&limit=4",
    "sort=nom,-id",
    "sort=criticite,-date_mise_en_service",
    "sort=-frequence_entretien,localisation",
    "sort=date_fin_garantie&limit=2&offset=1",
    "statut=panne&statut=maintenance",
    "criticite=critique&type=POMPE",
    "localisation=hall%201",
    "q=grundf",
    "q=pompe&sort=-nom&limit=2&offset=1",
    "q=x_9",
    "q=x%25",
    "q=%C3%A9",
    "q=zzz",
    "q=pompe&offset=50",
    "offset=50",
    "client_id={owner}",
]
CLIENT_QUERIES = [
    "",
    "sort=-nom_entreprise",
    "sort=contrat_fin,-id&limit=2",
    "is_active=true&type_client=entreprise",
    "niveau_service=premium",
    "ville=RABAT",
    "q=soci",
    "q=rabat&sort=-date_creation",
    "q=%C3%A9",
    "offset=10",
]


async def test_lists_answer_what_the_previous_implementation_did(
    client: httpx.AsyncClient,
    manager: Headers,
    client_user: Callable[[int], Headers],
    make_client: Make,
    make_equipement: Make,
    db_session: AsyncSession,
) -> None:
    owner = await make_client(ville="Rabat", niveau_service="premium", nom_contact="Karim", email="a@b.ma")
    other = await make_client(nom_entreprise="Société Ü", type_client="association", contrat_debut="2025-01-01")
    await make_equipement(nom="Pompe A", type="Pompe", localisation="Hall 1", marque="Grundfos", frequence_entretien=30)
    await make_equipement(
        nom="Pompe B é", type="pompe", localisation="Hall 2", criticite="critique", statut="panne",
        client_id=owner["id"],
    )  # fmt: skip
    four = await make_equipement(
        nom="Four", type="four", localisation="hall 1", criticite="important", numero_serie="X_9",
        date_mise_en_service="2020-02-29", date_fin_garantie="2030-02-28", client_id=other["id"],
    )  # fmt: skip
    await make_equipement(nom="Tour T1", type="tour", localisation="Hall 3", statut="retire", client_id=owner["id"])
    await make_equipement(nom="Pompe 100%", type="pompe", localisation="Hall 1", statut="maintenance", modele="P_1")
    # Text the API refuses today but older rows may hold (control characters, line separators).
    await db_session.execute(sa.update(Client).where(Client.id == owner["id"]).values(nom_contact=AWKWARD))
    await db_session.execute(sa.update(Equipement).where(Equipement.id == four["id"]).values(nom=f"Four {AWKWARD}"))
    # Stored moments with and without microseconds, as the database keeps them.
    base = datetime(2026, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)
    moment = sa.literal(base, sa.DateTime(timezone=True))
    for n, (table, column) in enumerate([(Equipement, Equipement.date_creation), (Client, Client.date_modification)]):
        step = timedelta(seconds=97, microseconds=n)
        await db_session.execute(sa.update(table).values({column: moment - table.id * step}))
    await db_session.execute(
        sa.update(Equipement).where(Equipement.nom == "Tour T1").values(date_creation=base.replace(microsecond=0))
    )

    differences = []
    for who, headers, only in (("manager", manager, None), ("client", client_user(owner["id"]), owner["id"])):
        for raw in EQUIPEMENT_QUERIES:
            query = raw.format(owner=owner["id"])
            response = await client.get(f"/api/v1/equipements?{query}", headers=headers)
            assert response.status_code == 200, response.text
            body, total = await old_answer(
                db_session, query, old_equipements_query, EquipementOut, _EQUIPEMENT_SORT, [Equipement.id], only
            )
            if response.content != body or response.headers["x-total-count"] != str(total):
                differences.append(f"{who} equipements?{query}: {response.content!r} != {body!r}")
        for query in CLIENT_QUERIES:
            response = await client.get(f"/api/v1/clients?{query}", headers=headers)
            assert response.status_code == 200, response.text
            body, total = await old_answer(
                db_session, query, old_clients_query, ClientOut, _CLIENT_SORT, [Client.id], only
            )
            if response.content != body or response.headers["x-total-count"] != str(total):
                differences.append(f"{who} clients?{query}: {response.content!r} != {body!r}")
    assert not differences, "\n".join(differences)
    assert response.headers["content-type"] == "application/json"
    everything = (await client.get("/api/v1/equipements?sort=-date_creation", headers=manager)).content
    assert b'"Four Tab\\tquote\\" back' in everything  # escaped as before
    assert b'"2026-03-01T10:20:30Z"' in everything and b'.123456Z"' in everything  # microseconds as stored
