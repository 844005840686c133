"""Usage and condition rules on meters (issue #17, DOMAIN.md §10): the readings arrive as assets'
`assets.releves.recorded.v1` batches through the real consumer path (`deliver`, inbox included); what
planning publishes is read from its outbox."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from icalendar import Calendar

from mif_planning.testing import Deliver, Headers, Make, MakeTech, compteur_data, outbox_envelopes, releves_data

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)
_ids = itertools.count(880_001)


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


async def occurrences(db_session: Any, planning_id: int) -> list[dict[str, Any]]:
    events = await outbox_envelopes(db_session, type_prefix="planning.occurrence.due.")
    return [e["data"] for e in events if e["data"]["planning_id"] == planning_id]


async def a_meter(
    deliver: Deliver, known_equipement: Callable[..., Any], *, code: str = "heures_marche", **fields: Any
) -> dict[str, Any]:
    equipement_id = await known_equipement()
    data = compteur_data(next(_ids), equipement_id, code=code, **fields)
    assert await deliver("assets.compteur.created.v1", data)
    return data


async def a_gauge(deliver: Deliver, known_equipement: Callable[..., Any], code: str, unite: str) -> dict[str, Any]:
    return await a_meter(deliver, known_equipement, code=code, nature="jauge", unite=unite)


async def readings(deliver: Deliver, meter: dict[str, Any], rows: list[Any], **envelope: Any) -> dict[str, Any]:
    data = releves_data(meter, rows)
    assert await deliver("assets.releves.recorded.v1", data, **envelope)
    return data


# --- usage plans --------------------------------------------------------------------------------


async def test_a_batch_crossing_twice_makes_two_occurrences_and_a_redelivery_none(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    make_technicien: MakeTech,
    deliver: Deliver,
    known_equipement: Callable[..., Any],
    db_session: Any,
) -> None:
    meter = await a_meter(deliver, known_equipement)
    await readings(deliver, meter, [(at(0), 480)])  # the counter's value when the plan is made
    tech = await make_technicien()
    plan = await make_plan(
        equipement_id=meter["equipement_id"],
        declencheur="usage",
        compteur_id=meter["compteur_id"],
        intervalle=500,
        technicien_id=tech.id,
    )
    assert plan["declencheur"] == "usage" and plan["frequence"] is None and plan["prochaine_date"] is None
    assert plan["prochain_seuil"] == 500 and plan["usage_actuel"] == 480
    assert plan["compteur"]["code"] == "heures_marche"

    batch = releves_data(meter, [(at(60), 700), (at(120), 1020), (at(90), 900)])
    assert await deliver("assets.releves.recorded.v1", batch, event_id="batch-1")
    first, second = await occurrences(db_session, plan["id"])
    assert first["occurrence_key"] == f"{plan['id']}:u:1" and second["occurrence_key"] == f"{plan['id']}:u:2"
    assert first["due_at"] == at(60).isoformat().replace("+00:00", "Z")  # the reading that crossed 500
    assert second["due_at"] == at(120).isoformat().replace("+00:00", "Z")  # and 1000
    assert first["type"] is None and first["technicien_id"] == tech.id and first["frequence"] == "usage"
    assert first["regle"]["declencheur"] == "usage" and first["regle"]["seuil"] == 500
    assert second["regle"]["valeur"] == 1020 and second["regle"]["seuil"] == 1000

    # The same event again: the inbox drops it; the same batch under another id: nothing newer in it.
    assert not await deliver("assets.releves.recorded.v1", batch, event_id="batch-1")
    assert await deliver("assets.releves.recorded.v1", batch, event_id="batch-1-bis")
    assert len(await occurrences(db_session, plan["id"])) == 2

    state = (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json()
    assert state["prochain_seuil"] == 1500 and state["usage_actuel"] == 1020
    assert state["derniere_date"] == second["due_at"]
    # The scheduler's occurrence rows are the calendar plans' ones: the schedule shows both as generated.
    window = {"from": at(0).isoformat(), "to": at(24 * 60).isoformat()}
    entries = (await client.get("/api/v1/planning/calendrier", params=window, headers=manager)).json()
    keys = {e["occurrence_key"]: e["statut"] for e in entries if e["planning_id"] == plan["id"]}
    # ... and the next crossing (1500) at the date the counter's rate (540 h in two hours) forecasts.
    assert keys == {
        first["occurrence_key"]: "generee",
        second["occurrence_key"]: "generee",
        f"{plan['id']}:u:3": "estimee",
    }


async def test_a_counter_reset_neither_triggers_nor_breaks_the_count(
    make_plan: Make, deliver: Deliver, known_equipement: Callable[..., Any], db_session: Any
) -> None:
    meter = await a_meter(deliver, known_equipement, code="cycles", unite="cycles")
    plan = await make_plan(
        equipement_id=meter["equipement_id"], declencheur="usage", compteur_id=meter["compteur_id"], intervalle=500
    )
    await readings(deliver, meter, [(at(0), 100), (at(10), 400)])
    # 400 → 490, then the counter is reset (10, flagged): 490 counted so far, and the reset adds nothing.
    await readings(deliver, meter, [(at(20), 490), (at(30), 10, True)])
    assert await occurrences(db_session, plan["id"]) == []
    # 10 → 50 after the reset: 40 more, 530 in all: the 500 crossing, once.
    await readings(deliver, meter, [(at(40), 50)])
    [event] = await occurrences(db_session, plan["id"])
    assert event["occurrence_key"] == f"{plan['id']}:u:1" and event["regle"]["valeur"] == 530


async def test_the_first_reading_of_a_counter_is_a_baseline_not_a_flood(
    make_plan: Make, deliver: Deliver, known_equipement: Callable[..., Any], db_session: Any
) -> None:
    meter = await a_meter(deliver, known_equipement, code="km", unite="km")
    plan = await make_plan(
        equipement_id=meter["equipement_id"], declencheur="usage", compteur_id=meter["compteur_id"], intervalle=1000
    )
    await readings(deliver, meter, [(at(0), 123_456)])  # an old vehicle: no 123 interventions
    assert await occurrences(db_session, plan["id"]) == []
    await readings(deliver, meter, [(at(60), 124_001)])
    [event] = await occurrences(db_session, plan["id"])
    assert event["occurrence_key"] == f"{plan['id']}:u:124"


async def test_the_forecast_of_a_linear_series_is_within_a_day_of_the_truth(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    deliver: Deliver,
    known_equipement: Callable[..., Any],
) -> None:
    meter = await a_meter(deliver, known_equipement)
    plan = await make_plan(
        equipement_id=meter["equipement_id"], declencheur="usage", compteur_id=meter["compteur_id"], intervalle=500
    )
    assert plan["prochaine_date_estimee"] is None  # no reading yet
    await readings(deliver, meter, [(at(0), 0)])
    one = (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json()
    assert one["prochaine_date_estimee"] is None  # one reading: no rate
    # 10 h a day, read every hour for 20 days: 500 h are reached on day 50.
    hourly = [(at(60 * h), 10 * h / 24) for h in range(1, 20 * 24 + 1)]
    for start in range(0, len(hourly), 1000):
        await readings(deliver, meter, hourly[start : start + 1000])
    body = (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json()
    estimee = datetime.fromisoformat(body["prochaine_date_estimee"])
    assert abs(estimee - (BASE + timedelta(days=50))) < timedelta(days=1)
    # The schedule shows the crossing at its forecast date.
    window = {"from": (BASE + timedelta(days=40)).isoformat(), "to": (BASE + timedelta(days=60)).isoformat()}
    entries = (await client.get("/api/v1/planning/calendrier", params=window, headers=manager)).json()
    [entry] = [e for e in entries if e["planning_id"] == plan["id"]]
    assert entry["statut"] == "estimee" and entry["occurrence_key"] == f"{plan['id']}:u:1"
    assert entry["titre"].startswith("Maintenance préventive (date estimée)")


async def test_a_counter_that_does_not_grow_has_no_forecast(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, deliver: Deliver, known_equipement: Callable[..., Any]
) -> None:
    meter = await a_meter(deliver, known_equipement)
    plan = await make_plan(
        equipement_id=meter["equipement_id"], declencheur="usage", compteur_id=meter["compteur_id"], intervalle=500
    )
    await readings(deliver, meter, [(at(m), 42) for m in range(0, 600, 60)])
    body = (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json()
    assert body["prochaine_date_estimee"] is None


# --- condition rules ----------------------------------------------------------------------------


async def a_vibration_rule(
    make_plan: Make, deliver: Deliver, known_equipement: Callable[..., Any], **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    gauge = await a_gauge(deliver, known_equipement, "vibration", "mm/s")
    plan = await make_plan(
        equipement_id=gauge["equipement_id"],
        declencheur="seuil",
        compteur_id=gauge["compteur_id"],
        operateur=">",
        seuil=7.1,
        duree_minutes=10,
        priorite="haute",
        **fields,
    )
    return gauge, plan


async def test_a_threshold_episode_triggers_once_and_again_after_returning_to_normal(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    deliver: Deliver,
    known_equipement: Callable[..., Any],
    db_session: Any,
) -> None:
    gauge, plan = await a_vibration_rule(make_plan, deliver, known_equipement, titre="Vibrations pompe P-12")
    assert plan["declencheur"] == "seuil" and plan["priorite"] == "haute" and plan["episode_en_cours"] is False
    # Beyond 7.1 from minute 5 on, across two batches: the 10 minutes are reached at minute 15.
    await readings(deliver, gauge, [(at(m), 5.0 if m < 5 else 8.2) for m in range(0, 12)])
    assert await occurrences(db_session, plan["id"]) == []
    await readings(deliver, gauge, [(at(m), 8.4) for m in range(12, 30)])
    [event] = await occurrences(db_session, plan["id"])
    assert event["occurrence_key"] == f"{plan['id']}:s:{at(5).isoformat()}"
    assert event["due_at"] == at(15).isoformat().replace("+00:00", "Z")
    assert (event["type"], event["priorite"], event["titre"]) == ("corrective", "haute", "Vibrations pompe P-12")
    assert event["regle"]["valeur"] == 8.4 and event["regle"]["seuil"] == 7.1 and event["regle"]["operateur"] == ">"
    body = (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json()
    assert body["episode_en_cours"] is True
    # Still high: the same episode, nothing more.
    await readings(deliver, gauge, [(at(m), 9.0) for m in range(30, 60)])
    assert len(await occurrences(db_session, plan["id"])) == 1
    # Back to normal, then high again for 10 minutes: a second episode.
    await readings(deliver, gauge, [(at(60), 6.5), *[(at(m), 7.5) for m in range(61, 75)]])
    _, second = await occurrences(db_session, plan["id"])
    assert second["occurrence_key"] == f"{plan['id']}:s:{at(61).isoformat()}"
    assert second["due_at"] == at(71).isoformat().replace("+00:00", "Z")


async def test_a_threshold_not_held_for_its_duration_triggers_nothing(
    make_plan: Make, deliver: Deliver, known_equipement: Callable[..., Any], db_session: Any
) -> None:
    gauge, plan = await a_vibration_rule(make_plan, deliver, known_equipement)
    # 9 minutes beyond, back to normal, 9 minutes beyond again: never 10 in a row.
    rows = [(at(m), 8.0) for m in range(0, 10)] + [(at(10), 7.0)] + [(at(m), 8.0) for m in range(11, 21)]
    await readings(deliver, gauge, rows)
    assert await occurrences(db_session, plan["id"]) == []
    # A late batch (older than what was evaluated) is not evaluated again.
    await readings(deliver, gauge, [(at(m + 0.5), 9.9) for m in range(0, 10)])
    assert await occurrences(db_session, plan["id"]) == []


async def test_a_suspended_rule_triggers_nothing(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    deliver: Deliver,
    known_equipement: Callable[..., Any],
    db_session: Any,
) -> None:
    gauge, plan = await a_vibration_rule(make_plan, deliver, known_equipement, statut="suspendu")
    await readings(deliver, gauge, [(at(m), 8.0) for m in range(0, 30)])
    assert await occurrences(db_session, plan["id"]) == []


async def test_a_rate_of_change_rule_triggers_once_per_episode(
    make_plan: Make, deliver: Deliver, known_equipement: Callable[..., Any], db_session: Any
) -> None:
    gauge = await a_gauge(deliver, known_equipement, "temperature", "°C")
    plan = await make_plan(
        equipement_id=gauge["equipement_id"],
        declencheur="variation",
        compteur_id=gauge["compteur_id"],
        operateur=">",
        seuil=5,  # rising more than 5 °C/h
        duree_minutes=60,  # fitted over the last hour
        priorite="urgente",
    )
    # +1.2 °C/h for two hours: normal.
    slow = [(at(m), 40 + 1.2 * m / 60) for m in range(0, 120, 5)]
    await readings(deliver, gauge, slow)
    assert await occurrences(db_session, plan["id"]) == []
    # Then +12 °C/h: once the fitted hour's rate passes 5 °C/h, one trigger, however long it lasts.
    fast = [(at(m), slow[-1][1] + 12 * (m - 115) / 60) for m in range(120, 240, 5)]
    await readings(deliver, gauge, fast)
    [event] = await occurrences(db_session, plan["id"])
    assert event["type"] == "corrective" and event["priorite"] == "urgente"
    assert event["occurrence_key"].startswith(f"{plan['id']}:v:")
    assert event["regle"]["valeur"] > 5 and event["regle"]["declencheur"] == "variation"
    assert event["titre"].startswith("Alerte temperature - ")
    # Steady again (rate back under 5 °C/h for the fitted hour), then rising fast again: a second one.
    top = fast[-1][1]
    await readings(deliver, gauge, [(at(m), top) for m in range(240, 360, 5)])
    await readings(deliver, gauge, [(at(m), top + 12 * (m - 355) / 60) for m in range(360, 480, 5)])
    assert len(await occurrences(db_session, plan["id"])) == 2


# --- the API --------------------------------------------------------------------------------------


async def test_a_rule_takes_only_its_kind_s_fields_and_a_meter_of_its_equipment(
    client: httpx.AsyncClient, manager: Headers, deliver: Deliver, known_equipement: Callable[..., Any]
) -> None:
    gauge = await a_gauge(deliver, known_equipement, "pression", "bar")
    base = {"equipement_id": gauge["equipement_id"], "compteur_id": gauge["compteur_id"]}
    cases = [
        ({**base, "declencheur": "usage", "intervalle": 500}, "compteur_id"),  # a gauge counts no usage
        ({**base, "declencheur": "usage"}, "intervalle"),
        ({**base, "declencheur": "usage", "intervalle": 500, "frequence": "mensuel"}, "frequence"),
        ({**base, "declencheur": "seuil", "operateur": ">", "seuil": 3}, "duree_minutes"),
        ({**base, "declencheur": "variation", "operateur": ">", "seuil": 3, "duree_minutes": 0}, "duree_minutes"),
        ({**base, "declencheur": "seuil", "operateur": "=", "seuil": 3, "duree_minutes": 5}, "operateur"),
        (
            {
                **base,
                "compteur_id": 987_654_321,
                "declencheur": "seuil",
                "operateur": "<",
                "seuil": 1,
                "duree_minutes": 0,
            },
            "compteur_id",
        ),
        (
            {
                "equipement_id": await known_equipement(),
                "compteur_id": gauge["compteur_id"],
                "declencheur": "seuil",
                "operateur": "<",
                "seuil": 1,
                "duree_minutes": 0,
            },
            "compteur_id",
        ),
        ({"equipement_id": gauge["equipement_id"]}, "frequence"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/planning", json=body, headers=manager)
        assert response.status_code == 422, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (body, response.text)
    ok = {**base, "declencheur": "seuil", "operateur": "<", "seuil": 1.5, "duree_minutes": 0}
    created = await client.post("/api/v1/planning", json=ok, headers=manager)
    assert created.status_code == 201, created.text
    assert created.json()["priorite"] == "normale"
    plan_id = created.json()["id"]
    # A rule's kind does not change; its threshold does; it has no date to move.
    refused = await client.put(f"/api/v1/planning/{plan_id}", json={"frequence": "mensuel"}, headers=manager)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "frequence"
    changed = await client.put(f"/api/v1/planning/{plan_id}", json={"seuil": 1.2}, headers=manager)
    assert changed.status_code == 200 and changed.json()["seuil"] == 1.2
    redate = await client.patch(
        f"/api/v1/planning/{plan_id}/dates", params={"nouvelle_date": BASE.isoformat()}, headers=manager
    )
    assert redate.status_code == 422


async def test_a_deleted_meter_ends_its_rules(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, deliver: Deliver, known_equipement: Callable[..., Any]
) -> None:
    meter = await a_meter(deliver, known_equipement)
    plan = await make_plan(
        equipement_id=meter["equipement_id"], declencheur="usage", compteur_id=meter["compteur_id"], intervalle=250
    )
    deleted = {**meter, "version": 2, "updated_at": datetime.now(UTC).isoformat()}
    assert await deliver("assets.compteur.deleted.v1", deleted)
    body = (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json()
    assert body["statut"] == "termine"


async def test_the_ical_feed_shows_a_usage_plan_s_forecast_crossing(
    client: httpx.AsyncClient,
    make_plan: Make,
    make_technicien: MakeTech,
    deliver: Deliver,
    known_equipement: Callable[..., Any],
) -> None:
    tech = await make_technicien()
    meter = await a_meter(deliver, known_equipement)
    plan = await make_plan(
        equipement_id=meter["equipement_id"],
        declencheur="usage",
        compteur_id=meter["compteur_id"],
        intervalle=500,
        technicien_id=tech.id,
    )
    # 10 h a day over the last 10 days, 300 h now: 500 h in 20 days.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    await readings(deliver, meter, [(now - timedelta(hours=h), 300 - 10 * h / 24) for h in range(0, 240, 2)])
    feed = (await client.post(f"/api/v1/techniciens/{tech.id}/ical-token", headers=tech.headers)).json()
    parsed = Calendar.from_ical((await client.get(feed["path"])).content)
    [event] = [e for e in parsed.walk("VEVENT") if str(e["uid"]) == f"occurrence-{plan['id']}-u1@planning.mif.ma"]
    assert str(event["status"]) == "TENTATIVE"
    assert str(event["summary"]).startswith("Maintenance préventive (date estimée)")
    assert abs(event.decoded("dtstart") - (now + timedelta(days=20))) < timedelta(days=1)
