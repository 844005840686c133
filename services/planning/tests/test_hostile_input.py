"""Dates at the edge of the calendar, repeated filters and NUL characters (fuzz findings): a 4xx
problem+json naming the problem, never a 500, nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.params import MAX_REPEATS
from mif_planning.testing import Headers, Make, MakeTech

RANGE = "must be between 1900-01-01T00:00:00Z and 2999-12-31T23:59:59Z"
OUT_OF_RANGE = ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31"]


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
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["detail"] and problem["request_id"]
    return problem


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
