"""Listing and search on a few thousand rows: every filter, multi-field sort, paging headers, full-text
`q`, compared with the same rule computed in Python; and the row-level rules for two client
organisations and two technicians."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.listing import plain_page
from mif_common.pagination import order_by
from mif_common.statements import CompiledSql, fetch
from mif_interventions import repository as repo
from mif_interventions.api import _json, _present
from mif_interventions.interventions_api import _SORT
from mif_interventions.models import Intervention, Priorite, Statut, TypeIntervention
from mif_interventions.schemas import InterventionOut
from mif_interventions.testing import World, new_id

NOW = datetime.now(UTC).replace(microsecond=0)
OPEN = {"ouverte", "affectee", "en_cours", "en_attente"}
WORDS = ["compresseur", "pompe", "chaudière", "fuite", "vibration", "surchauffe", "courroie", "filtre"]
PRIORITY_RANK = {p.value: i for i, p in enumerate(Priorite)}


@dataclass
class Data:
    rows: list[dict[str, Any]]
    clients: list[int]
    equipements: list[int]
    techniciens: list[int]


@pytest.fixture
async def data(world: World, db_session: AsyncSession) -> Data:
    rng = random.Random(20260301)
    clients = [new_id(), new_id()]
    equipements = [await world.equipement(client_id=clients[i % 2], nom=f"Eq {i}") for i in range(6)]
    techniciens = [(await world.technicien()).id for _ in range(3)]
    rows = []
    for n in range(3000):
        eq = rng.randrange(6)
        statut = rng.choice(list(Statut)).value
        tech = None if statut == "ouverte" else rng.choice(techniciens)
        urgence = rng.random() < 0.1
        created = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 90))
        limite = None if rng.random() < 0.1 else created + timedelta(hours=rng.choice([2, 24, 72, 168, 2000]))
        rows.append(
            {
                "titre": f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} n°{n}",
                "description": f"Constat : {rng.choice(WORDS)} sur la ligne {n % 7}",
                "type": rng.choice(list(TypeIntervention)).value,
                "statut": statut,
                "priorite": "urgente" if urgence else rng.choice(list(Priorite)).value,
                "urgence": urgence,
                "equipement_id": equipements[eq],
                "client_id": clients[eq % 2],
                "technicien_id": tech,
                "date_creation": created,
                "date_modification": created,
                "date_limite": limite,
                "version": 1,
            }
        )
    result = await db_session.execute(sa.insert(Intervention).returning(Intervention.id), rows)
    for row, new in zip(rows, result.scalars().all(), strict=True):
        row["id"] = new
    return Data(rows=rows, clients=clients, equipements=equipements, techniciens=techniciens)


def late(row: dict[str, Any]) -> bool:
    return row["date_limite"] is not None and row["date_limite"] < datetime.now(UTC) and row["statut"] in OPEN


CASES: list[tuple[str, Callable[[Data], dict[str, Any]], Callable[[Data, dict[str, Any]], bool]]] = [
    ("statut", lambda d: {"statut": "en_cours"}, lambda d, r: r["statut"] == "en_cours"),
    (
        "several statuts",
        lambda d: {"statut": ["ouverte", "affectee"]},
        lambda d, r: r["statut"] in ("ouverte", "affectee"),
    ),
    ("comma statuts", lambda d: {"statut": "cloturee,annulee"}, lambda d, r: r["statut"] in ("cloturee", "annulee")),
    (
        "statut+priorite",
        lambda d: {"statut": "en_attente", "priorite": "haute"},
        lambda d, r: r["statut"] == "en_attente" and r["priorite"] == "haute",
    ),
    ("type", lambda d: {"type": "preventive"}, lambda d, r: r["type"] == "preventive"),
    ("urgence", lambda d: {"urgence": "true"}, lambda d, r: r["urgence"]),
    ("technicien", lambda d: {"technicien_id": d.techniciens[1]}, lambda d, r: r["technicien_id"] == d.techniciens[1]),
    ("equipement", lambda d: {"equipement_id": d.equipements[2]}, lambda d, r: r["equipement_id"] == d.equipements[2]),
    ("client", lambda d: {"client_id": d.clients[1]}, lambda d, r: r["client_id"] == d.clients[1]),
    ("en_retard", lambda d: {"en_retard": "true"}, lambda d, r: late(r)),
    ("pas en retard", lambda d: {"en_retard": "false"}, lambda d, r: not late(r)),
    (
        "creation range",
        lambda d: {
            "date_creation_min": (NOW - timedelta(days=30)).isoformat(),
            "date_creation_max": (NOW - timedelta(days=10)).isoformat(),
        },
        lambda d, r: NOW - timedelta(days=30) <= r["date_creation"] <= NOW - timedelta(days=10),
    ),
    (
        "deadline range",
        lambda d: {"date_limite_min": NOW.isoformat(), "date_limite_max": (NOW + timedelta(days=5)).isoformat()},
        lambda d, r: r["date_limite"] is not None and NOW <= r["date_limite"] <= NOW + timedelta(days=5),
    ),
    ("q", lambda d: {"q": "vibration"}, lambda d, r: "vibration" in (r["titre"] + " " + r["description"]).lower()),
    (
        "q two words, prefix",
        lambda d: {"q": "Fuite compres"},
        lambda d, r: all(w in (r["titre"] + " " + r["description"]).lower() for w in ("fuite", "compresseur")),
    ),
    (
        "q stems plural",
        lambda d: {"q": "pompes"},
        lambda d, r: "pompe" in (r["titre"] + " " + r["description"]).lower(),
    ),
    (
        "combined",
        lambda d: {
            "statut": ["en_cours", "en_attente"],
            "client_id": d.clients[0],
            "q": "filtre",
            "type": "corrective",
        },
        lambda d, r: (
            r["statut"] in ("en_cours", "en_attente")
            and r["client_id"] == d.clients[0]
            and "filtre" in (r["titre"] + " " + r["description"]).lower()
            and r["type"] == "corrective"
        ),
    ),
]


async def test_every_filter_matches_its_rule(client: httpx.AsyncClient, world: World, data: Data) -> None:
    """Each case of CASES against the same 3,000 rows (inserted once): ids, order and total."""
    failures = []
    for name, params, keep in CASES:
        expected = sorted((r for r in data.rows if keep(data, r)), key=lambda r: -r["id"])
        assert expected, f"the data set should exercise {name}"
        response = await client.get(
            "/api/v1/interventions", params={**params(data), "limit": 500}, headers=world.manager
        )
        assert response.status_code == 200, response.text
        if int(response.headers["x-total-count"]) != len(expected):
            failures.append(f"{name}: total {response.headers['x-total-count']}, expected {len(expected)}")
        elif [i["id"] for i in response.json()] != [r["id"] for r in expected[:500]]:
            failures.append(f"{name}: other rows or order")
    assert not failures, "\n".join(failures)


async def test_multi_field_sort_and_paging(client: httpx.AsyncClient, world: World, data: Data) -> None:
    params = {"statut": "ouverte", "sort": "priorite,-date_creation", "limit": 50}
    expected = sorted(
        (r for r in data.rows if r["statut"] == "ouverte"),
        key=lambda r: (PRIORITY_RANK[r["priorite"]], -r["date_creation"].timestamp(), -r["id"]),
    )
    seen: list[int] = []
    offset = 0
    while True:
        page = await client.get(
            "/api/v1/filters/interventions", params={**params, "offset": offset}, headers=world.manager
        )
        assert page.status_code == 200
        assert page.headers["x-total-count"] == str(len(expected))
        links = page.headers["link"]
        assert 'rel="first"' in links and 'rel="last"' in links
        seen.extend(i["id"] for i in page.json())
        if 'rel="next"' not in links:
            break
        offset += 50
    assert seen == [r["id"] for r in expected]
    by_title = await client.get(
        "/api/v1/interventions/", params={"sort": "titre,id", "limit": 5}, headers=world.manager
    )
    titles = [i["titre"] for i in by_title.json()]
    assert titles == sorted(titles, key=str.lower)


async def test_paging_links_keep_repeated_filters(client: httpx.AsyncClient, world: World, data: Data) -> None:
    """Following `next` lists the same interventions: every value of a repeated filter stays in it."""
    params = [("statut", "ouverte"), ("statut", "affectee"), ("sort", "id"), ("limit", "20")]
    expected = sorted(r["id"] for r in data.rows if r["statut"] in ("ouverte", "affectee"))
    page = await client.get("/api/v1/interventions", params=params, headers=world.manager)
    assert page.status_code == 200 and page.headers["x-total-count"] == str(len(expected))
    nxt = next(link for link in page.headers["link"].split(", ") if link.endswith('rel="next"'))
    assert nxt == '</api/v1/interventions?statut=ouverte&statut=affectee&sort=id&limit=20&offset=20>; rel="next"'
    second = await client.get(nxt[1 : nxt.index(">")], headers=world.manager)
    assert [i["id"] for i in second.json()] == expected[20:40]


async def test_list_rows_embed_names_and_match_single_reads(
    client: httpx.AsyncClient, world: World, data: Data
) -> None:
    listing = (
        await client.get("/api/v1/interventions", params={"statut": "en_cours", "limit": 3}, headers=world.manager)
    ).json()
    for item in listing:
        assert item["equipement"]["nom"].startswith("Eq ") and item["technicien"]["id"] == item["technicien_id"]
        # Built from the row without the model on the hot path: still exactly the documented schema.
        assert InterventionOut.model_validate(item).model_dump(mode="json") == item
        single = await client.get(f"/api/v1/interventions/{item['id']}", headers=world.manager)
        assert single.json() == item


@pytest.mark.parametrize(
    "query",
    [
        "statut=cassee",
        "priorite=moyenne",
        "type=x",
        "sort=secret",
        "limit=0",
        "limit=501",
        "urgence=peut",
        "client_id=0",
    ],
)
async def test_bad_list_parameters_are_422(client: httpx.AsyncClient, world: World, query: str) -> None:
    response = await client.get(f"/api/v1/interventions?{query}", headers=world.manager)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


async def test_a_database_shutting_down_during_a_list_is_a_503(
    client: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list runs on the asyncpg connection itself; its errors are answered like any statement's."""

    async def shutting_down(*_: Any, **__: Any) -> None:
        raise asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")

    monkeypatch.setattr(asyncpg.Connection, "fetch", shutting_down)
    response = await client.get("/api/v1/interventions", params={"statut": "ouverte"}, headers=world.manager)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["type"].endswith("/database-unavailable")


async def test_search_with_nothing_searchable_finds_nothing(client: httpx.AsyncClient, world: World) -> None:
    await world.intervention(titre="Fuite")
    response = await client.get("/api/v1/interventions", params={"q": "&|!:*"}, headers=world.manager)
    assert response.status_code == 200 and response.json() == []


# --- row-level rules ----------------------------------------------------------------------------------


async def test_two_clients_and_two_technicians_each_see_only_theirs(client: httpx.AsyncClient, world: World) -> None:
    org_a, org_b = new_id(), new_id()
    eq_a, eq_b = await world.equipement(client_id=org_a), await world.equipement(client_id=org_b)
    t1, t2 = await world.technicien(), await world.technicien()
    a1 = await world.intervention(equipement_id=eq_a, technicien_id=t1.id)
    a2 = await world.intervention(equipement_id=eq_a)
    b1 = await world.intervention(equipement_id=eq_b, technicien_id=t2.id)
    b2 = await world.intervention(equipement_id=eq_b, technicien_id=t1.id)
    user_a, user_b = world.client_user(org_a), world.client_user(org_b)

    async def ids(headers: dict[str, str], **params: Any) -> set[int]:
        response = await client.get("/api/v1/interventions", params={"limit": 500, **params}, headers=headers)
        return {i["id"] for i in response.json()}

    assert await ids(user_a) == {a1["id"], a2["id"]}
    assert await ids(user_b) == {b1["id"], b2["id"]}
    assert await ids(user_a, client_id=org_b) == set()  # a filter never widens the scope
    assert await ids(t1.headers) == {a1["id"], b2["id"]}
    assert await ids(t2.headers) == {b1["id"]}
    assert await ids(world.manager) >= {a1["id"], a2["id"], b1["id"], b2["id"]}

    for headers, hidden in ((user_a, b1), (user_b, a1), (t2.headers, a1), (t1.headers, a2)):
        iid = hidden["id"]
        for method, path, kw in (
            ("GET", f"/api/v1/interventions/{iid}", {}),
            ("GET", f"/api/v1/interventions/{iid}/historique", {}),
            ("GET", f"/api/v1/interventions/{iid}/commentaires", {}),
            ("POST", f"/api/v1/interventions/{iid}/commentaires", {"json": {"contenu": "?"}}),
            ("POST", f"/api/v1/interventions/{iid}/annuler", {"json": {"remarque": "x"}}),
            ("POST", f"/api/v1/interventions/{iid}/demarrer", {}),
            ("PATCH", f"/api/v1/interventions/{iid}/statut?statut=en_cours", {}),
        ):
            response = await client.request(method, path, headers=headers, **kw)
            assert response.status_code == 404, (method, path, response.status_code)
            assert response.json()["detail"] == f"No intervention with id {iid}."
    # PATCH /{id} is for managers and technicians; a technician not assigned gets 404.
    assert (await client.patch(f"/api/v1/interventions/{a2['id']}", json={}, headers=t1.headers)).status_code == 404
    assert (await client.patch(f"/api/v1/interventions/{a1['id']}", json={}, headers=user_a)).status_code == 403
    # What they may see, they may act on within their role.
    assert (await world.act(b2["id"], "demarrer", t1.headers)).status_code == 200
    assert (
        await client.post(f"/api/v1/interventions/{a1['id']}/commentaires", json={"contenu": "Merci"}, headers=user_a)
    ).status_code == 201


async def test_a_client_account_without_organisation_is_refused(client: httpx.AsyncClient, world: World) -> None:
    orphan = world.auth_headers("client", user_id=new_id())
    response = await client.get("/api/v1/interventions", headers=orphan)
    assert response.status_code == 403


# --- searches: the matches first, whatever the sort ---------------------------------------------------

SEARCHES = ["vibration", "Fuite compres", "pompes", "filtre ligne", "n°12", "chaudière", "zzz"]
SEARCH_SORTS = [None, "-date_creation", "priorite,-date_creation", "titre", "-date_limite,id", "statut,-urgence"]
SEARCH_PAGES = [(50, 0), (7, 13), (500, 0), (20, 2990)]


async def test_searches_answer_what_the_one_query_statement_did(
    client: httpx.AsyncClient, world: World, data: Data, db_session: AsyncSession
) -> None:
    """A search collects its matches through the full-text index first (a MATERIALIZED CTE) and then sorts and
    pages them, instead of one statement that PostgreSQL may plan as a walk in the sort's order: the same rows,
    in the same order, with the same total, as the one-query statement of the previous build, for every sort,
    page and scope (every row's fields compared, `en_retard` aside: it depends on the moment of the request)."""
    connection = await db_session.connection()
    failures = []
    for who, headers, scope in (
        ("manager", world.manager, repo.Visibilite()),
        ("client", world.client_user(data.clients[0]), repo.Visibilite(client_id=data.clients[0])),
    ):
        for q in SEARCHES:
            for sort in SEARCH_SORTS:
                for limit, offset in SEARCH_PAGES:
                    params: dict[str, Any] = {"q": q, "limit": limit, "offset": offset}
                    if sort:
                        params["sort"] = sort
                    response = await client.get("/api/v1/interventions", params=params, headers=headers)
                    assert response.status_code == 200, response.text
                    terms, values = repo.list_terms(repo.Filtres(q=q, now=NOW), scope)
                    order = order_by(sort, _SORT, default=[Intervention.id.desc()])
                    page = plain_page(repo.LIST_COLUMNS, Intervention, repo.term_clauses(terms), order)
                    count = sa.select(sa.func.count()).select_from(Intervention).where(*repo.term_clauses(terms))
                    names = set(repo._PARAMETERS)
                    records = await fetch(
                        connection,
                        CompiledSql.of(page, connection.dialect, names),
                        {**values, "limit": limit, "offset": offset},
                    )
                    total = (await fetch(connection, CompiledSql.of(count, connection.dialect, names), values))[0][0]
                    expected = [{k: v for k, v in _present(dict(r), NOW).items() if k != "_total"} for r in records]
                    got = response.json()
                    for item in (*expected, *got):
                        item.pop("en_retard")
                    if response.headers["x-total-count"] != str(total):
                        failures.append(f"{who} {params}: total {response.headers['x-total-count']} != {total}")
                    elif got != json.loads(_json(expected)):
                        failures.append(f"{who} {params}: other rows or order")
    assert not failures, "\n".join(failures[:20])
