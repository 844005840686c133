"""The schedule: plan occurrences (emitted and projected) and assigned interventions, as JSON per role
and as an iCalendar feed that calendar apps fetch without a login (parsed back with `icalendar`)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from icalendar import Calendar
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_auth.testing import user_data
from mif_interventions.testing import intervention_data
from mif_planning.config import PlanningSettings
from mif_planning.jobs import run_due_pass
from mif_planning.testing import Deliver, Headers, Make, MakeTech

# Next year (a plan's next date may not be more than one interval ago): 2 March, 08:00 UTC.
T0 = datetime(datetime.now(UTC).year + 1, 3, 2, 8, 0, tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def day(offset: int) -> str:
    """The date `offset` days after T0's, as a query parameter."""
    return (T0 + timedelta(days=offset)).date().isoformat()


async def calendar(client: httpx.AsyncClient, headers: Headers, **params: Any) -> httpx.Response:
    return await client.get("/api/v1/planning/calendrier", params=params, headers=headers)


async def test_the_schedule_combines_occurrences_and_interventions(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    make_technicien: MakeTech,
    deliver: Deliver,
    sessions: async_sessionmaker[AsyncSession],
    mif_settings: PlanningSettings,
) -> None:
    tech, other = await make_technicien(), await make_technicien()
    weekly = await make_plan(frequence="weekly", prochaine_date=iso(T0), technicien_id=tech.id)
    await make_plan(frequence="daily", prochaine_date=iso(T0), technicien_id=other.id)
    await run_due_pass(sessions, settings=mif_settings, at=T0)  # T0's occurrences are generated
    await deliver(
        "interventions.intervention.started.v1",
        intervention_data(
            910_001,
            "en_cours",
            equipement_id=weekly["equipement_id"],
            technicien_id=tech.id,
            occurred_at=T0 + timedelta(days=2),
            priorite="haute",
            titre="Fuite vanne",
        ),
    )
    response = await calendar(client, manager, **{"from": day(-1), "to": day(18), "technicien_id": tech.id})
    assert response.status_code == 200, response.text
    entries = response.json()
    assert [(e["type"], e["debut"], e["statut"]) for e in entries] == [
        ("occurrence", iso(T0), "generee"),
        ("intervention", iso(T0 + timedelta(days=2)), "en_cours"),
        ("occurrence", iso(T0 + timedelta(days=7)), "prevue"),
        ("occurrence", iso(T0 + timedelta(days=14)), "prevue"),
    ]
    first = entries[0]
    assert first["uid"] == f"occurrence-{weekly['id']}-{T0:%Y%m%dT%H%M%SZ}"
    assert first["occurrence_key"] == f"{weekly['id']}:{T0.isoformat()}"
    assert first["titre"] == f"Maintenance préventive - {weekly['equipement']['nom']}"
    assert first["fin"] == iso(T0 + timedelta(hours=1)) and first["technicien_id"] == tech.id
    assert entries[1]["titre"] == "Fuite vanne" and entries[1]["priorite"] == "haute"
    assert entries[1]["uid"] == "intervention-910001"
    # Everyone's schedule for a manager: the daily plan of the other technician is there too.
    everyone = (await calendar(client, manager, **{"from": day(-1), "to": day(18)})).json()
    assert {e["technicien_id"] for e in everyone} >= {tech.id, other.id}


async def test_a_technician_sees_only_its_own_schedule(
    client: httpx.AsyncClient, make_plan: Make, make_technicien: MakeTech, auth_headers: Any
) -> None:
    me, other = await make_technicien(), await make_technicien()
    await make_plan(frequence="weekly", prochaine_date=iso(T0), technicien_id=me.id)
    await make_plan(frequence="weekly", prochaine_date=iso(T0), technicien_id=other.id)
    mine = (await calendar(client, me.headers, **{"from": day(-1), "to": day(29)})).json()
    assert mine and {e["technicien_id"] for e in mine} == {me.id}
    assert (await calendar(client, me.headers, **{"from": day(-1), "technicien_id": other.id})).status_code == 404
    no_profile = auth_headers("technicien", user_id=123_456_789)
    assert (await calendar(client, no_profile)).json() == []


async def test_the_window_is_checked(client: httpx.AsyncClient, manager: Headers) -> None:
    for params in ({"from": "2026-03-10", "to": "2026-03-01"}, {"from": "2026-01-01", "to": "2027-06-01"}):
        response = await calendar(client, manager, **params)
        assert response.status_code == 422
        assert response.json()["detail"] == "The window must end after it starts and span at most 366 days."
    assert (await calendar(client, manager, **{"from": "not-a-date"})).status_code == 422
    assert (await calendar(client, manager)).status_code == 200  # default: today, 31 days


async def test_the_ical_feed_works_without_a_login_and_parses(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    make_technicien: MakeTech,
    deliver: Deliver,
    sessions: async_sessionmaker[AsyncSession],
    mif_settings: PlanningSettings,
) -> None:
    tech = await make_technicien()
    now = datetime.now(UTC).replace(microsecond=0)
    plan = await make_plan(frequence="hebdomadaire", prochaine_date=iso(now - timedelta(days=1)), technicien_id=tech.id)
    await run_due_pass(sessions, settings=mif_settings)  # yesterday's occurrence is generated, now
    await deliver(
        "interventions.intervention.assigned.v1",
        intervention_data(
            920_001, "affectee", equipement_id=plan["equipement_id"], technicien_id=tech.id, titre="Contrôle pompe"
        ),
    )
    issued = await client.post(f"/api/v1/techniciens/{tech.id}/ical-token", headers=tech.headers)
    assert issued.status_code == 201, issued.text
    feed = issued.json()
    assert feed["path"] == f"/api/v1/planning/ical/{feed['token']}"
    assert feed["url"] == "https://mif.example.ma" + feed["path"]
    state = await client.get(f"/api/v1/techniciens/{tech.id}/ical-token", headers=manager)
    assert state.json()["actif"] is True and "token" not in state.json()

    response = await client.get(feed["path"])  # no Authorization header
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    parsed = Calendar.from_ical(response.content)
    assert str(parsed["VERSION"]) == "2.0" and "MIF Maroc" in str(parsed["PRODID"])
    events = list(parsed.walk("VEVENT"))
    by_uid = {str(e["UID"]): e for e in events}
    yesterday = now - timedelta(days=1)
    generated = by_uid[f"occurrence-{plan['id']}-{yesterday:%Y%m%dT%H%M%SZ}@planning.mif.ma"]
    assert str(generated["SUMMARY"]) == f"Maintenance préventive - {plan['equipement']['nom']}"
    assert generated.decoded("DTSTART") == yesterday
    assert generated.decoded("DTEND") == yesterday + timedelta(hours=1)
    assert str(generated["STATUS"]) == "CONFIRMED"
    projected = [e for uid, e in by_uid.items() if uid.startswith(f"occurrence-{plan['id']}-") and e is not generated]
    assert len(projected) == 25  # weekly from now + 6 days (the next date) to now + 180 days: +6, +13, ... +174
    assert all(str(e["STATUS"]) == "TENTATIVE" for e in projected)
    intervention = by_uid["intervention-920001@planning.mif.ma"]
    assert str(intervention["SUMMARY"]) == "Contrôle pompe"
    assert "Statut : affectee" in str(intervention["DESCRIPTION"])
    # The .ics suffix calendar apps like is accepted too.
    assert (await client.get(feed["path"] + ".ics")).status_code == 200


async def test_feed_secrets_rotate_and_stay_private(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, client_user: Headers, deliver: Deliver
) -> None:
    me, other = await make_technicien(), await make_technicien()
    first = (await client.post(f"/api/v1/techniciens/{me.id}/ical-token", headers=manager)).json()
    second = (await client.post(f"/api/v1/techniciens/{me.id}/ical-token", headers=me.headers)).json()
    assert first["token"] != second["token"]
    assert (await client.get(first["path"])).status_code == 404  # the previous URL stopped working
    assert (await client.get(second["path"])).status_code == 200
    # Another technician's feed: as if it did not exist; clients: refused.
    assert (await client.post(f"/api/v1/techniciens/{other.id}/ical-token", headers=me.headers)).status_code == 404
    assert (await client.get(f"/api/v1/techniciens/{other.id}/ical-token", headers=me.headers)).status_code == 404
    assert (await client.post(f"/api/v1/techniciens/{me.id}/ical-token", headers=client_user)).status_code == 403
    # The user deactivated in auth: gone while it is.
    await deliver("auth.user.deactivated.v1", user_data(me.user_id, is_active=False))
    assert (await client.get(second["path"])).status_code == 404
    await deliver("auth.user.activated.v1", user_data(me.user_id), time=datetime.now(UTC) + timedelta(seconds=1))
    assert (await client.get(second["path"])).status_code == 200
    # Revoked, or the technician deleted: gone.
    assert (await client.delete(f"/api/v1/techniciens/{me.id}/ical-token", headers=me.headers)).status_code == 204
    assert (await client.get(second["path"])).status_code == 404
    third = (await client.post(f"/api/v1/techniciens/{me.id}/ical-token", headers=manager)).json()
    await client.delete(f"/api/v1/techniciens/{me.id}", headers=manager)
    assert (await client.get(third["path"])).status_code == 404


async def test_unknown_feed_tokens_are_404(client: httpx.AsyncClient) -> None:
    for token in ("nope", "x" * 43, "%20"):
        response = await client.get(f"/api/v1/planning/ical/{token}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_projection_skips_whole_intervals() -> None:
    from mif_planning.calendrier import projected_dates
    from mif_planning.models import Plan

    plan = Plan(frequence="mensuel", prochaine_date=datetime(2025, 1, 1, tzinfo=UTC))
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    dates = projected_dates(plan, start=start, end=end, limit=100)
    assert dates[0] >= start and dates[0] - timedelta(days=30) < start
    assert all(b - a == timedelta(days=30) for a, b in itertools.pairwise(dates))
    # 2025-01-01 + 15 x 30 days = 2026-03-27 (the first step on or after the start), then every 30 days.
    assert [d.date() for d in dates] == [date(2026, 3, 27), date(2026, 4, 26), date(2026, 5, 26)]
