"""Bad input: always a 4xx problem+json, never a write, never a 500. Among it what the fuzz suite found:
dates at the edge of the calendar, filters repeated past PostgreSQL's limit, NUL characters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.params import MAX_REPEATS
from mif_planning.testing import Headers, Make, MakeTech


async def writes(db_session: AsyncSession) -> tuple[int, ...]:
    row = (
        await db_session.execute(
            text(
                "SELECT (SELECT count(*) FROM technicien), (SELECT count(*) FROM competence),"
                " (SELECT count(*) FROM plan), (SELECT count(*) FROM outbox)"
            )
        )
    ).one()
    return tuple(int(v) for v in row)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"] and body["title"] and body["request_id"]
    assert "Traceback" not in response.text
    return body


PATHS = ["/api/v1/techniciens", "/api/v1/techniciens/competences", "/api/v1/planning"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"nom": "x",', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"null", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b"", "application/json"),
        (b"nom=x", "application/x-www-form-urlencoded"),
    ],
)
async def test_malformed_bodies_write_nothing(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession, path: str, content: bytes, content_type: str
) -> None:
    before = await writes(db_session)
    response = await client.post(path, content=content, headers={**manager, "content-type": content_type})
    assert_problem(response, 422)
    assert await writes(db_session) == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/techniciens", {"user_id": 0}, "user_id"),
        ("/api/v1/techniciens", {"user_id": 2**63}, "user_id"),
        ("/api/v1/techniciens", {"user_id": 5, "disponibilite": "en_vacances"}, "disponibilite"),
        ("/api/v1/techniciens", {"user_id": 5, "is_admin": True}, "is_admin"),
        ("/api/v1/techniciens", {"user_id": 5, "competences": [{"id": 1, "niveau": "maitre"}]}, "competences.0.niveau"),
        ("/api/v1/techniciens", {"user_id": 5, "competences_ids": [1, 1]}, "body"),
        ("/api/v1/techniciens", {"user_id": 5, "equipe": "a\x01b"}, "equipe"),  # NUL: a 400, below
        ("/api/v1/techniciens/competences", {"nom": ""}, "nom"),
        ("/api/v1/techniciens/competences", {"nom": "x" * 101}, "nom"),
        ("/api/v1/planning", {"equipement_id": 1}, "frequence"),
        ("/api/v1/planning", {"equipement_id": 1, "frequence": 30}, "frequence"),
        (
            "/api/v1/planning",
            {"equipement_id": 1, "frequence": "mensuel", "prochaine_date": "bientôt"},
            "prochaine_date",
        ),
        ("/api/v1/planning", {"equipement_id": 1, "frequence": "mensuel", "statut": "en_retard"}, "statut"),
        ("/api/v1/planning", {"equipement_id": -1, "frequence": "mensuel"}, "equipement_id"),
    ],
)
async def test_invalid_fields_are_named(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession, path: str, body: dict[str, Any], field: str
) -> None:
    before = await writes(db_session)
    problem = assert_problem(await client.post(path, json=body, headers=manager), 422)
    assert field in {e["field"] for e in problem["errors"]}
    assert await writes(db_session) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/techniciens/0",
        "/api/v1/techniciens/-3",
        "/api/v1/techniciens/99999999999999999999",
        "/api/v1/techniciens/competences/0",
        "/api/v1/planning/0",
        "/api/v1/planning/abc",
        "/api/v1/techniciens/9223372036854775808",
    ],
)
async def test_out_of_range_ids_are_422(client: httpx.AsyncClient, manager: Headers, path: str) -> None:
    assert_problem(await client.get(path, headers=manager), 422)


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"disponibilite": "absent"}, {"sort": "password"}],
)
async def test_bad_list_parameters(client: httpx.AsyncClient, manager: Headers, params: dict[str, Any]) -> None:
    assert_problem(await client.get("/api/v1/techniciens", params=params, headers=manager), 422)


async def test_missing_resources_are_404(client: httpx.AsyncClient, manager: Headers) -> None:
    for path in ("/api/v1/techniciens/987654", "/api/v1/techniciens/competences/987654", "/api/v1/planning/987654"):
        assert_problem(await client.get(path, headers=manager), 404)
    assert_problem(await client.get("/api/v1/techniciens/me", headers=manager), 404)


async def test_the_404s_it_answers_are_in_its_openapi(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech
) -> None:
    """Found by the fuzz suite (tests/reliability/test_fuzz_e2e.py): these 404s were not documented."""
    me = await make_technicien()
    assert_problem(await client.get("/api/v1/techniciens/me", headers=manager), 404)
    # A technician naming another technician's schedule (or no technician's).
    nobody = {"technicien_id": 987654}
    assert_problem(await client.get("/api/v1/planning/calendrier", params=nobody, headers=me.headers), 404)
    spec = (await client.get("/api/v1/planning/openapi.json")).json()
    for path in ("/api/v1/techniciens/me", "/api/v1/planning/calendrier"):
        answer = spec["paths"][path]["get"]["responses"]["404"]
        assert answer["content"] == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


# --- fuzz findings: dates at the edge of the calendar, repeated filters, NUL characters -----------------------

RANGE = "must be between 1900-01-01T00:00:00Z and 2999-12-31T23:59:59Z"
OUT_OF_RANGE = ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31"]


def assert_out_of_range(response: httpx.Response, field: str) -> None:
    problem = assert_problem(response, 422)
    assert problem["errors"] == [{"field": field, "message": RANGE}]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize("field", ["from", "to"])
async def test_calendar_bounds_out_of_range_are_422(
    client: httpx.AsyncClient, manager: Headers, field: str, value: str
) -> None:
    params = {"from": "2026-01-01", field: value} if field == "to" else {field: value}
    response = await client.get("/api/v1/planning/calendrier", params=params, headers=manager)
    assert_out_of_range(response, field)


async def test_the_last_calendar_window_is_served(client: httpx.AsyncClient, manager: Headers) -> None:
    response = await client.get("/api/v1/planning/calendrier", params={"from": "2999-12-31T23:59:59Z"}, headers=manager)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_redating_out_of_range_is_422_and_changes_nothing(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, db_session: AsyncSession, value: str
) -> None:
    plan = await make_plan()
    before = await writes(db_session)
    response = await client.patch(
        f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": value}, headers=manager
    )
    assert_out_of_range(response, "nouvelle_date")
    assert await writes(db_session) == before
    again = await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)
    assert again.json()["prochaine_date"] == plan["prochaine_date"]


@pytest.mark.parametrize("value", OUT_OF_RANGE)
async def test_a_plan_dated_out_of_range_is_422_and_creates_nothing(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, db_session: AsyncSession, value: str
) -> None:
    plan = await make_plan()
    before = await writes(db_session)
    response = await client.post(
        "/api/v1/planning",
        json={"equipement_id": plan["equipement_id"], "frequence": "mensuel", "prochaine_date": value},
        headers=manager,
    )
    assert_out_of_range(response, "prochaine_date")
    response = await client.put(f"/api/v1/planning/{plan['id']}", json={"prochaine_date": value}, headers=manager)
    assert_out_of_range(response, "prochaine_date")
    assert await writes(db_session) == before


@pytest.mark.parametrize(("path", "name"), [("/api/v1/techniciens", "disponibilite"), ("/api/v1/planning", "statut")])
async def test_a_filter_repeated_past_the_limit_is_422(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, path: str, name: str
) -> None:
    """Each value becomes a bound parameter: 33 000 of them broke PostgreSQL's protocol limit (a 500)."""
    await make_technicien()
    value = "disponible" if name == "disponibilite" else "actif"
    ok = await client.get(path, params=[(name, value)] * MAX_REPEATS, headers=manager)
    assert ok.status_code == 200, ok.text
    refused = await client.get(path, params=[(name, value)] * (MAX_REPEATS + 1), headers=manager)
    problem = assert_problem(refused, 422)
    assert problem["errors"][0]["field"] == name


@pytest.mark.parametrize(
    "path", ["/api/v1/techniciens/competences", "/api/v1/techniciens", "/api/v1/planning", "/api/v1/techniciens/0"]
)
async def test_a_nul_in_the_url_is_400(client: httpx.AsyncClient, manager: Headers, path: str) -> None:
    problem = assert_problem(await client.get(path + "?q=m%C3%A9ca%00", headers=manager), 400)
    assert problem["type"].endswith("/nul-character")


@pytest.mark.parametrize(
    "q", ["%", "_", "\\", "a\\", "%_\\", "'", "x" * 200, "é", "😀", "\U0008285a", "\ufffe", "a\tb", "\u202e"]
)
async def test_any_other_competence_search_is_answered(
    client: httpx.AsyncClient, manager: Headers, make_competence: Make, q: str
) -> None:
    await make_competence(nom="Mécanique 100% _ \\ générale")
    response = await client.get("/api/v1/techniciens/competences", params={"q": q}, headers=manager)
    assert response.status_code == 200, response.text


async def test_a_nul_in_a_body_is_400_and_creates_nothing(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession
) -> None:
    before = await writes(db_session)
    for path, body in [
        ("/api/v1/techniciens", {"user_id": 5, "equipe": "a\x00b"}),
        ("/api/v1/techniciens/competences", {"nom": "Soudure\x00"}),
    ]:
        problem = assert_problem(await client.post(path, json=body, headers=manager), 400)
        assert problem["type"].endswith("/nul-character")
    assert await writes(db_session) == before
