"""Dates at the edge of the calendar and hostile text: a 4xx problem+json naming the problem, nothing stored.

`9999-12-31T23:59:59-23:59` is a valid ISO 8601 date-time that overflows once normalised to UTC (a 500
before mif_common.datetimes bounded every date-time a client sends to years 1900-2999)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_interventions.testing import World

RANGE = "must be between 1900-01-01T00:00:00Z and 2999-12-31T23:59:59Z"
OUT_OF_RANGE = [
    "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+23:59",  # year 0 in UTC
    "3000-01-01T00:00:00Z",
    "1899-12-31T23:59:59Z",
    "2999-12-31T23:00:00-01:00",  # 3000 in UTC
]


async def stored(db_session: AsyncSession) -> tuple[int, int, int]:
    row = (
        await db_session.execute(
            text(
                "SELECT (SELECT count(*) FROM intervention), (SELECT count(*) FROM historique),"
                " (SELECT count(*) FROM outbox)"
            )
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def assert_field_error(response: httpx.Response, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["errors"] == [{"field": field, "message": RANGE}]
    assert field in problem["detail"] and problem["request_id"]
    return problem


@pytest.mark.parametrize("date_limite", OUT_OF_RANGE)
async def test_a_deadline_out_of_range_is_422_and_creates_nothing(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession, date_limite: str
) -> None:
    equipement_id = await world.equipement()
    before = await stored(db_session)
    response = await client.post(
        "/api/v1/interventions",
        json={"titre": "Fuite", "type": "corrective", "equipement_id": equipement_id, "date_limite": date_limite},
        headers=world.manager,
    )
    assert_field_error(response, "date_limite")
    assert await stored(db_session) == before


async def test_a_deadline_moved_out_of_range_is_422_and_changes_nothing(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    created = await world.intervention()
    before = await stored(db_session)
    response = await client.patch(
        f"/api/v1/interventions/{created['id']}",
        json={"date_limite": "9999-12-31T23:59:59-23:59"},
        headers=world.manager,
    )
    assert_field_error(response, "date_limite")
    assert await stored(db_session) == before
    again = await client.get(f"/api/v1/interventions/{created['id']}", headers=world.manager)
    assert again.json()["date_limite"] == created["date_limite"]


async def test_a_deadline_with_an_offset_is_kept_as_the_same_instant(world: World) -> None:
    created = await world.intervention(date_limite="2999-12-31T23:59:59+01:00")
    assert created["date_limite"] == "2999-12-31T22:59:59Z"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/interventions?date_creation_min={}", "date_creation_min"),
        ("/api/v1/interventions?date_limite_max={}", "date_limite_max"),
        ("/api/v1/filters/interventions?date_creation_max={}", "date_creation_max"),
        ("/api/v1/dashboard/kpis?au={}", "au"),
        ("/api/v1/dashboard/kpis?du={}", "du"),
    ],
)
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59Z", "0001-01-01"])
async def test_date_filters_out_of_range_are_422(
    world: World, client: httpx.AsyncClient, path: str, field: str, value: str
) -> None:
    response = await client.get(path.format(value.replace("+", "%2B")), headers=world.manager)
    assert_field_error(response, field)


async def test_a_nul_in_the_search_is_400(world: World, client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/interventions?q=fuite%00", headers=world.manager)
    assert response.status_code == 400 and response.json()["type"].endswith("/nul-character")


async def test_a_nul_in_a_title_is_400_and_creates_nothing(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    equipement_id = await world.equipement()
    before = await stored(db_session)
    response = await client.post(
        "/api/v1/interventions",
        content=b'{"titre": "Fuite\\u0000", "type": "corrective", "equipement_id": %d}' % equipement_id,
        headers={**world.manager, "content-type": "application/json"},
    )
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "titre"
    assert await stored(db_session) == before
