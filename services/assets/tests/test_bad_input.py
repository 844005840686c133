"""Bad input: always a 4xx problem+json, never a write, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import Headers, Make


async def writes(db_session: AsyncSession) -> tuple[int, int, int]:
    row = (
        await db_session.execute(
            text(
                "SELECT (SELECT count(*) FROM client), (SELECT count(*) FROM equipement), (SELECT count(*) FROM outbox)"
            )
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"] and body["title"] and body["type"].startswith("https://")
    assert body["request_id"]
    assert "Traceback" not in response.text
    return body


PATHS = ["/api/v1/clients", "/api/v1/equipements"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"nom": "x",', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'"just a string"', "application/json"),
        (b"null", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"", "application/json"),
        (b"nom=x&type=y&localisation=z", "application/x-www-form-urlencoded"),
        (b'{"nom_entreprise": "x"}', "text/plain"),
        (b"<client><nom>x</nom></client>", "application/xml"),
    ],
)
async def test_malformed_bodies_and_wrong_content_types_write_nothing(
    client: httpx.AsyncClient,
    manager: Headers,
    db_session: AsyncSession,
    path: str,
    content: bytes,
    content_type: str,
) -> None:
    before = await writes(db_session)
    response = await client.post(path, content=content, headers={**manager, "content-type": content_type})
    assert_problem(response, 422)
    assert await writes(db_session) == before


@pytest.mark.parametrize("path", PATHS)
async def test_oversized_bodies_are_413(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession, path: str
) -> None:
    before = await writes(db_session)
    huge = json.dumps({"nom": "x" * 2_000_000}).encode()
    response = await client.post(path, content=huge, headers={**manager, "content-type": "application/json"})
    assert_problem(response, 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while streaming
        for _ in range(40):
            yield b"x" * 65536

    assert_problem(await client.post(path, content=chunks(), headers=manager), 413)
    assert await writes(db_session) == before


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/clients", {"nom_entreprise": "X", "id": 5}),
        ("/api/v1/clients", {"nom_entreprise": "X", "date_creation": "2020-01-01T00:00:00Z"}),
        ("/api/v1/equipements", {"nom": "X", "type": "t", "localisation": "l", "version": 9}),
        ("/api/v1/equipements", {"nom": "X", "type": "t", "localisation": "l", "is_admin": True}),
    ],
)
async def test_unknown_fields_are_refused(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession, path: str, body: dict[str, Any]
) -> None:
    before = await writes(db_session)
    problem = assert_problem(await client.post(path, json=body, headers=manager), 422)
    unknown = next(k for k in body if k not in ("nom_entreprise", "nom", "type", "localisation"))
    assert problem["errors"] == [{"field": unknown, "message": "unknown field"}]
    assert await writes(db_session) == before


async def test_unknown_fields_are_refused_on_update(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, db_session: AsyncSession
) -> None:
    made = await make_equipement()
    before = await writes(db_session)
    response = await client.put(f"/api/v1/equipements/{made['id']}", json={"id": 99, "nom": "y"}, headers=manager)
    assert_problem(response, 422)
    assert await writes(db_session) == before


SQL_HTML = "Robert'); DROP TABLE equipement; -- <script>alert(1)</script>"


async def test_sql_and_html_are_stored_as_text(
    client: httpx.AsyncClient, manager: Headers, make_client: Make, make_equipement: Make
) -> None:
    org = await make_client(nom_entreprise=SQL_HTML, adresse="<b>bold</b>\n'; --")
    made = await make_equipement(nom=SQL_HTML, localisation="<img src=x onerror=alert(1)>", client_id=org["id"])
    fetched = await client.get(f"/api/v1/equipements/{made['id']}", headers=manager)
    assert fetched.headers["content-type"] == "application/json"
    assert fetched.json()["nom"] == SQL_HTML
    assert (await client.get(f"/api/v1/clients/{org['id']}", headers=manager)).json()["adresse"] == "<b>bold</b>\n'; --"
    for q in ("'); DROP TABLE equipement; --", "<script>"):
        search = await client.get("/api/v1/equipements", params={"q": q}, headers=manager)
        assert search.status_code == 200
        assert [e["id"] for e in search.json()] == [made["id"]]
    assert (await client.get("/api/v1/equipements", params={"q": "' OR '1'='1"}, headers=manager)).json() == []
    assert (await client.get("/api/v1/equipements", params={"type": "x' OR 1=1 --"}, headers=manager)).json() == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=501",
        "limit=99999999999999999999999",
        "offset=-5",
        "offset=abc",
        "offset=99999999999999999999",
        "sort=password",
        "sort=-version",
        "sort=nom;DROP TABLE equipement",
        "statut=cassé",
        "criticite=haute",
        "client_id=0",
        "client_id=-3",
        "client_id=99999999999999999999999",
        "q=" + "x" * 201,
        "type=" + "x" * 101,
    ],
)
async def test_bad_list_parameters(client: httpx.AsyncClient, manager: Headers, query: str) -> None:
    problem = assert_problem(await client.get(f"/api/v1/equipements?{query}", headers=manager), 422)
    assert problem["errors"]


@pytest.mark.parametrize(
    "query", ["limit=0", "offset=-1", "sort=email;--", "niveau_service=gold", "type_client=x", "is_active=maybe"]
)
async def test_bad_client_list_parameters(client: httpx.AsyncClient, manager: Headers, query: str) -> None:
    assert_problem(await client.get(f"/api/v1/clients?{query}", headers=manager), 422)


@pytest.mark.parametrize("entity_id", ["0", "-3", "abc", "99999999999999999999999", "1.5", "1e3"])
@pytest.mark.parametrize(
    "path", ["/api/v1/equipements/{}", "/api/v1/equipements/{}/historique-statut", "/api/v1/clients/{}"]
)
async def test_bad_ids(client: httpx.AsyncClient, manager: Headers, path: str, entity_id: str) -> None:
    assert_problem(await client.get(path.format(entity_id), headers=manager), 422)


async def test_missing_things_are_404_problems(client: httpx.AsyncClient, manager: Headers) -> None:
    assert_problem(await client.get("/api/v1/equipements/987654321", headers=manager), 404)
    assert_problem(await client.put("/api/v1/equipements/987654321", json={"nom": "x"}, headers=manager), 404)
    assert_problem(await client.delete("/api/v1/clients/987654321", headers=manager), 404)
    assert_problem(await client.get("/api/v1/equipements/1/nothing", headers=manager), 404)
    assert_problem(await client.patch("/api/v1/equipements/1", json={}, headers=manager), 405)


async def test_health_metrics_and_openapi(client: httpx.AsyncClient, manager: Headers) -> None:
    assert (await client.get("/health/live")).json()["status"] == "ok"
    assert (await client.get("/health/ready")).json()["checks"]["database"] == "ok"
    await client.get("/api/v1/equipements", headers=manager)
    metrics = await client.get("/metrics")
    assert 'mif_http_request_duration_seconds_count{method="GET",route="/api/v1/equipements"' in metrics.text
    spec = (await client.get("/api/v1/assets/openapi.json")).json()
    for path in (
        "/api/v1/clients",
        "/api/v1/clients/{client_id}",
        "/api/v1/equipements",
        "/api/v1/equipements/{equipement_id}",
        "/api/v1/equipements/{equipement_id}/historique-statut",
    ):
        assert path in spec["paths"], path
    assert (await client.get("/api/v1/assets/docs")).status_code == 200
