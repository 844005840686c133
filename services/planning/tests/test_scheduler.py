"""The preventive scheduler (DOMAIN.md §5): one `planning.occurrence.due.v1` per occurrence, with a
stable key, whatever re-runs, pauses or concurrent replicas; missed occurrences collapse into the most
recent one (the skipped ones in the plan's history); suspended plans generate nothing; the circuit
breaker suspends a plan generating too much; reminders before the due date; overdue occurrences
reported once.

The passes are called directly with a chosen clock (`at`); most tests run them inside the test's
rolled-back transaction, the concurrency test on two engines of its own with real commits."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.db import make_engine, make_sessionmaker
from mif_interventions.testing import intervention_data
from mif_planning.config import PlanningSettings
from mif_planning.jobs import run_due_pass, run_overdue_pass, run_pass, run_reminder_pass
from mif_planning.testing import Deliver, Headers, Make, MakeTech, outbox_envelopes

# Next year, 2 March 08:00 UTC: plans made through the API at T0 minus a few days are not "more than one
# interval in the past" (refused), and the passes are run with a clock of their own.
T0 = datetime(datetime.now(UTC).year + 1, 3, 2, 8, 0, tzinfo=UTC)
Sessions = async_sessionmaker[AsyncSession]


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def due_events(db_session: AsyncSession, planning_id: int | None = None) -> list[dict[str, Any]]:
    events = await outbox_envelopes(db_session, type_prefix="planning.occurrence.due.")
    return [e for e in events if planning_id is None or e["data"]["planning_id"] == planning_id]


async def plan_state(client: httpx.AsyncClient, manager: Headers, plan_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/planning/{plan_id}", headers=manager)
    body: dict[str, Any] = response.json()
    return body


async def history(client: httpx.AsyncClient, manager: Headers, plan_id: int, action: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/planning/{plan_id}/historique", headers=manager)
    assert response.status_code == 200, response.text
    return [row for row in response.json() if row["action"] == action]


async def test_a_due_plan_emits_one_event_and_moves_on(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    make_technicien: MakeTech,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    tech = await make_technicien()
    plan = await make_plan(frequence="mensuel", prochaine_date=iso(T0), technicien_id=tech.id, commentaire="Graissage")
    assert await run_due_pass(sessions, settings=mif_settings, at=T0 - timedelta(seconds=1)) == 0
    assert await run_due_pass(sessions, settings=mif_settings, at=T0) == 1
    [event] = await due_events(db_session, plan["id"])
    assert event["type"] == "planning.occurrence.due.v1" and event["subject"] == str(plan["id"])
    assert event["data"] == {
        "occurrence_key": f"{plan['id']}:{T0.isoformat()}",
        "planning_id": plan["id"],
        "equipement_id": plan["equipement_id"],
        "equipement_nom": plan["equipement"]["nom"],
        "technicien_id": tech.id,
        "due_at": iso(T0),
        "frequence": "mensuel",
        "commentaire": "Graissage",
        "occurred_at": iso(T0),
        # A meter rule's fields (issue #17): null on a calendar occurrence.
        "type": None,
        "priorite": None,
        "titre": None,
        "regle": None,
        "checklist": None,  # the plan has no checklist template
    }
    state = await plan_state(client, manager, plan["id"])
    assert state["derniere_date"] == iso(T0)
    assert state["prochaine_date"] == iso(T0 + timedelta(days=30))
    # Running again, now or a bit later, emits nothing more.
    assert await run_due_pass(sessions, settings=mif_settings, at=T0) == 0
    assert await run_due_pass(sessions, settings=mif_settings, at=T0 + timedelta(days=1)) == 0
    assert len(await due_events(db_session, plan["id"])) == 1


async def test_suspended_and_ended_plans_generate_nothing(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    suspended = await make_plan(frequence="daily", prochaine_date=iso(T0 - timedelta(days=3)), statut="suspendu")
    ended = await make_plan(frequence="daily", prochaine_date=iso(T0 - timedelta(days=3)))
    await client.put(f"/api/v1/planning/{ended['id']}", json={"statut": "termine"}, headers=manager)
    result = await run_pass(sessions, settings=mif_settings, at=T0)
    for plan in (suspended, ended):
        assert await due_events(db_session, plan["id"]) == []
        assert (await plan_state(client, manager, plan["id"]))["prochaine_date"] == plan["prochaine_date"]
    assert result.due == 0
    # Resumed: only the most recent missed occurrence is generated; the 3 before it are skipped.
    await client.put(f"/api/v1/planning/{suspended['id']}", json={"statut": "actif"}, headers=manager)
    assert await run_due_pass(sessions, settings=mif_settings, at=T0) == 1
    [event] = await due_events(db_session, suspended["id"])
    assert event["data"]["due_at"] == iso(T0)
    assert len(await history(client, manager, suspended["id"], "occurrences_sautees")) == 3


async def test_a_week_of_missed_occurrences_generates_only_the_most_recent_one(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    plan = await make_plan(frequence="journalier", prochaine_date=iso(T0))
    # The suite was stopped for a week: it comes back a week and 3 hours later. Eight occurrences fell due
    # (T0 .. T0 + 7 days); one intervention is wanted, for the most recent one, not eight late ones.
    back = T0 + timedelta(days=7, hours=3)
    assert await run_due_pass(sessions, settings=mif_settings, at=back) == 1
    [event] = await due_events(db_session, plan["id"])
    last = T0 + timedelta(days=7)
    assert event["data"]["due_at"] == iso(last)
    assert event["data"]["occurrence_key"] == f"{plan['id']}:{last.isoformat()}"
    assert event["data"]["occurred_at"] == iso(back)
    state = await plan_state(client, manager, plan["id"])
    assert state["derniere_date"] == iso(last)
    assert state["prochaine_date"] == iso(T0 + timedelta(days=8))  # the next one to come, not a late one
    skipped = await history(client, manager, plan["id"], "occurrences_sautees")
    missed = [T0 + timedelta(days=d) for d in range(7)]
    assert [row["detail"] for row in skipped] == [
        {
            "nombre": 1,
            "due_at": iso(d),
            "occurrence_key": f"{plan['id']}:{d.isoformat()}",
            "remplacees_par": event["data"]["occurrence_key"],
        }
        for d in missed
    ]
    assert {(row["user_id"], row["horodatage"]) for row in skipped} == {(None, iso(back))}
    # Only the generated occurrence exists (overdue detection and the schedule follow it).
    keys = (
        (
            await db_session.execute(
                text("SELECT occurrence_key FROM occurrence WHERE planning_id = :p"), {"p": plan["id"]}
            )
        )
        .scalars()
        .all()
    )
    assert keys == [event["data"]["occurrence_key"]]
    # A second pass at the same time (another replica, a restart) emits nothing and records nothing.
    assert await run_due_pass(sessions, settings=mif_settings, at=back) == 0
    assert len(await due_events(db_session, plan["id"])) == 1
    assert len(await history(client, manager, plan["id"], "occurrences_sautees")) == 7


async def test_skipped_occurrences_beyond_the_cap_are_summarised_and_other_plans_go_on(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    settings = mif_settings.model_copy(update={"scheduler_skipped_history_cap": 3})
    far_behind = await make_plan(frequence="daily", prochaine_date=iso(T0 - timedelta(days=30)))
    on_time = await make_plan(frequence="annuel", prochaine_date=iso(T0))
    assert await run_due_pass(sessions, settings=settings, at=T0) == 2
    assert [e["data"]["due_at"] for e in await due_events(db_session, far_behind["id"])] == [iso(T0)]
    assert len(await due_events(db_session, on_time["id"])) == 1
    # 30 skipped (T0-30d .. T0-1d): the 27 oldest in one summary row, the 3 most recent one row each.
    rows = [r["detail"] for r in await history(client, manager, far_behind["id"], "occurrences_sautees")]
    replaced = f"{far_behind['id']}:{T0.isoformat()}"
    assert rows[0] == {
        "nombre": 27,
        "premiere": iso(T0 - timedelta(days=30)),
        "derniere": iso(T0 - timedelta(days=4)),
        "remplacees_par": replaced,
    }
    assert [(r["nombre"], r["due_at"]) for r in rows[1:]] == [(1, iso(T0 - timedelta(days=d))) for d in (3, 2, 1)]
    assert await history(client, manager, on_time["id"], "occurrences_sautees") == []


async def test_a_plan_stored_in_the_year_477_is_handled_in_one_pass(
    client: httpx.AsyncClient,
    manager: Headers,
    known_equipement: Callable[..., Any],
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    """Written before the API refused such dates (or straight into the database): one event, at once.
    The most recent occurrence is computed, not reached by stepping through 566,000 days."""
    first = datetime(477, 6, 1, 8, 0, tzinfo=UTC)
    plan_id = await db_session.scalar(
        text(
            "INSERT INTO plan (equipement_id, frequence, prochaine_date, statut)"
            " VALUES (:e, 'journalier', :d, 'actif') RETURNING id"
        ),
        {"e": await known_equipement(), "d": first},
    )
    started = time.monotonic()
    assert await run_due_pass(sessions, settings=mif_settings, at=T0 + timedelta(hours=2)) == 1
    assert time.monotonic() - started < 5
    [event] = await due_events(db_session, plan_id)
    assert event["data"]["due_at"] == iso(T0)  # every day at 08:00 since 477: the last one is T0
    state = await plan_state(client, manager, plan_id)
    assert state["derniere_date"] == iso(T0) and state["prochaine_date"] == iso(T0 + timedelta(days=1))
    skipped = [r["detail"] for r in await history(client, manager, plan_id, "occurrences_sautees")]
    total = (T0 - first).days
    assert len(skipped) == 1 + mif_settings.scheduler_skipped_history_cap
    assert skipped[0]["nombre"] == total - mif_settings.scheduler_skipped_history_cap
    assert skipped[0]["premiere"] == "0477-06-01T08:00:00Z"
    assert sum(r["nombre"] for r in skipped) == total
    assert await run_due_pass(sessions, settings=mif_settings, at=T0 + timedelta(hours=2)) == 0


async def test_the_circuit_breaker_suspends_a_plan_generating_too_much_and_tells_once(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    settings = mif_settings.model_copy(update={"max_occurrences_per_plan_per_hour": 3})
    plan = await make_plan(frequence="hebdomadaire", prochaine_date=iso(T0))
    # Someone (or some script) re-dates the plan to a few minutes ago, again and again: each date is a new
    # occurrence, so each pass generates one more intervention.
    for n in range(3):
        at = T0 + timedelta(minutes=10 * n)
        redated = await client.patch(
            f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": iso(at)}, headers=manager
        )
        assert redated.status_code == 200, redated.text
        assert await run_due_pass(sessions, settings=settings, at=at) == 1
    # The fourth within the hour would exceed the limit: the plan is suspended instead.
    at = T0 + timedelta(minutes=30)
    await client.patch(f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": iso(at)}, headers=manager)
    assert await run_due_pass(sessions, settings=settings, at=at) == 0
    state = await plan_state(client, manager, plan["id"])
    assert state["statut"] == "suspendu" and state["prochaine_date"] == iso(at)  # left where it was
    [row] = await history(client, manager, plan["id"], "suspension_automatique")
    assert row["user_id"] is None and row["horodatage"] == iso(at)
    assert row["detail"]["generees_derniere_heure"] == 3 and row["detail"]["limite_par_heure"] == 3
    assert "3 intervention(s) dans la dernière heure (limite : 3 par heure)" in row["detail"]["raison"]
    [suspended] = await outbox_envelopes(db_session, type_prefix="planning.plan.suspended.")
    assert suspended["subject"] == str(plan["id"])
    assert suspended["data"] == {
        "planning_id": plan["id"],
        "equipement_id": plan["equipement_id"],
        "equipement_nom": plan["equipement"]["nom"],
        "technicien_id": None,
        "frequence": "hebdomadaire",
        "due_at": iso(at),
        "generated_last_hour": 3,
        "max_per_hour": 3,
        "reason": row["detail"]["raison"],
        "occurred_at": iso(at),
    }
    # Suspended: later passes generate nothing and tell nobody again.
    for later in (at, at + timedelta(minutes=5), at + timedelta(hours=2)):
        assert await run_due_pass(sessions, settings=settings, at=later) == 0
    assert len(await outbox_envelopes(db_session, type_prefix="planning.plan.suspended.")) == 1
    assert len(await due_events(db_session, plan["id"])) == 3
    # A manager resumes it: a fresh hour, the pending occurrence is generated.
    await client.put(f"/api/v1/planning/{plan['id']}", json={"statut": "actif"}, headers=manager)
    assert await run_due_pass(sessions, settings=settings, at=at + timedelta(minutes=1)) == 1


async def test_an_occurrence_already_emitted_is_never_emitted_again(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    plan = await make_plan(frequence="hebdomadaire", prochaine_date=iso(T0))
    assert await run_due_pass(sessions, settings=mif_settings, at=T0) == 1
    # Someone puts the date back on the occurrence that was already generated: same key, no new event,
    # and the plan still moves on.
    await client.put(f"/api/v1/planning/{plan['id']}", json={"prochaine_date": iso(T0)}, headers=manager)
    assert await run_due_pass(sessions, settings=mif_settings, at=T0) == 0
    assert (await plan_state(client, manager, plan["id"]))["prochaine_date"] == iso(T0 + timedelta(days=7))
    # Re-dated to a new time: that is a new occurrence.
    await client.patch(
        f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": iso(T0 + timedelta(hours=2))}, headers=manager
    )
    assert await run_due_pass(sessions, settings=mif_settings, at=T0 + timedelta(hours=2)) == 1
    assert len(await due_events(db_session, plan["id"])) == 2


async def test_a_deleted_default_technician_is_not_assigned_new_work(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    make_technicien: MakeTech,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    tech = await make_technicien()
    plan = await make_plan(prochaine_date=iso(T0), technicien_id=tech.id)
    await client.delete(f"/api/v1/techniciens/{tech.id}", headers=manager)
    await run_due_pass(sessions, settings=mif_settings, at=T0)
    [event] = await due_events(db_session, plan["id"])
    assert event["data"]["technicien_id"] is None


async def test_two_scheduler_instances_at_once_emit_one_event_per_occurrence(
    mif_settings: PlanningSettings,
) -> None:
    """Two replicas, each with its own engine and connections, committing for real, run their passes at
    the same time over the same due plans."""
    at = datetime(2021, 6, 1, 8, 0, tzinfo=UTC)  # a clock of its own: no other test's plan is due then
    settings = mif_settings.model_copy(update={"scheduler_batch_size": 1000})
    engines = [make_engine(mif_settings.database_url, schema="planning", pool_size=2) for _ in range(2)]
    makers = [make_sessionmaker(engine, source="planning") for engine in engines]
    equipement_id, plan_ids = 7_700_001, []
    try:
        async with engines[0].begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO equipement_ref (equipement_id, nom, statut, version, updated_at)"
                    " VALUES (:id, 'Concurrence', 'operationnel', 1, now())"
                ),
                {"id": equipement_id},
            )
            for n in range(12):
                plan_ids.append(
                    await conn.scalar(
                        text(
                            "INSERT INTO plan (equipement_id, frequence, prochaine_date, statut)"
                            " VALUES (:e, 'journalier', :d, 'actif') RETURNING id"
                        ),
                        {"e": equipement_id, "d": at - timedelta(days=2 + n % 3)},
                    )
                )
        results = await asyncio.gather(*(run_due_pass(m, settings=settings, at=at) for m in makers))
        again = await asyncio.gather(*(run_due_pass(m, settings=settings, at=at) for m in makers))

        async with engines[1].connect() as conn:
            keys = (
                (
                    await conn.execute(
                        text(
                            "SELECT envelope->'data'->>'occurrence_key' FROM outbox"
                            " WHERE type = 'planning.occurrence.due.v1' AND subject = ANY(:ids)"
                        ),
                        {"ids": [str(i) for i in plan_ids]},
                    )
                )
                .scalars()
                .all()
            )
            occurrences = await conn.scalar(
                text("SELECT count(*) FROM occurrence WHERE planning_id = ANY(:ids)"), {"ids": plan_ids}
            )
            next_dates = set(
                (await conn.execute(text("SELECT prochaine_date FROM plan WHERE id = ANY(:ids)"), {"ids": plan_ids}))
                .scalars()
                .all()
            )
    finally:
        async with engines[0].begin() as conn:
            await conn.execute(
                text("DELETE FROM outbox WHERE type LIKE 'planning.occurrence.%' AND subject = ANY(:ids)"),
                {"ids": [str(i) for i in plan_ids]},
            )
            await conn.execute(text("DELETE FROM plan WHERE id = ANY(:ids)"), {"ids": plan_ids})
            await conn.execute(text("DELETE FROM equipement_ref WHERE equipement_id = :id"), {"id": equipement_id})
        for engine in engines:
            await engine.dispose()

    expected = 12  # one per plan, whether it is 2, 3 or 4 days behind: the most recent occurrence only
    assert sum(results) == expected == len(keys)
    assert sum(again) == 0
    duplicates = {k: n for k, n in Counter(keys).items() if n > 1}
    assert duplicates == {}
    assert occurrences == len(keys)
    assert next_dates == {at + timedelta(days=1)}


# --- reminders ----------------------------------------------------------------------------------


async def test_a_reminder_goes_out_once_within_the_lead_time(
    make_plan: Make,
    make_technicien: MakeTech,
    sessions: Sessions,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    settings = mif_settings.model_copy(update={"reminder_lead_minutes": 120})
    tech = await make_technicien()
    plan = await make_plan(frequence="hebdomadaire", prochaine_date=iso(T0), technicien_id=tech.id)
    assert await run_reminder_pass(sessions, settings=settings, at=T0 - timedelta(minutes=121)) == 0
    assert await run_reminder_pass(sessions, settings=settings, at=T0 - timedelta(minutes=120)) == 1
    assert await run_reminder_pass(sessions, settings=settings, at=T0 - timedelta(minutes=30)) == 0
    reminders = [
        e
        for e in await outbox_envelopes(db_session, type_prefix="planning.occurrence.reminder.")
        if e["data"]["planning_id"] == plan["id"]
    ]
    assert len(reminders) == 1
    data = reminders[0]["data"]
    assert data["occurrence_key"] == f"{plan['id']}:{T0.isoformat()}"
    assert data["lead_minutes"] == 120 and data["technicien_id"] == tech.id and data["due_at"] == iso(T0)
    # The due event of that occurrence still goes out, once, with the same key.
    assert await run_due_pass(sessions, settings=settings, at=T0) == 1
    [due] = await due_events(db_session, plan["id"])
    assert due["data"]["occurrence_key"] == data["occurrence_key"]
    # Then the next occurrence gets its own reminder.
    assert await run_reminder_pass(sessions, settings=settings, at=T0 + timedelta(days=7, minutes=-60)) == 1


async def test_no_reminder_for_suspended_plans_or_when_disabled(
    make_plan: Make, sessions: Sessions, mif_settings: PlanningSettings
) -> None:
    await make_plan(frequence="hebdomadaire", prochaine_date=iso(T0 + timedelta(days=400)), statut="suspendu")
    settings = mif_settings.model_copy(update={"reminder_lead_minutes": 60 * 24 * 90})
    assert await run_reminder_pass(sessions, settings=settings, at=T0 + timedelta(days=399)) == 0
    await make_plan(frequence="hebdomadaire", prochaine_date=iso(T0 + timedelta(days=400)))
    disabled = mif_settings.model_copy(update={"reminder_lead_minutes": 0})
    assert await run_reminder_pass(sessions, settings=disabled, at=T0 + timedelta(days=399)) == 0
    assert await run_reminder_pass(sessions, settings=settings, at=T0 + timedelta(days=399)) == 1


# --- overdue ------------------------------------------------------------------------------------

_interventions = itertools.count(880_001)


async def test_an_occurrence_not_closed_in_time_makes_the_plan_late_once(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    make_technicien: MakeTech,
    sessions: Sessions,
    deliver: Deliver,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    settings = mif_settings.model_copy(update={"overdue_grace_minutes": 3 * 24 * 60})
    tech = await make_technicien()
    plan = await make_plan(frequence="mensuel", prochaine_date=iso(T0), technicien_id=tech.id)
    await run_due_pass(sessions, settings=settings, at=T0)
    key = f"{plan['id']}:{T0.isoformat()}"
    # interventions creates the preventive intervention (scheduler-made: no actor), tagged with the plan.
    iid = next(_interventions)
    created = intervention_data(
        iid,
        "affectee",
        equipement_id=plan["equipement_id"],
        technicien_id=tech.id,
        type="preventive",
        actor_id=None,
        planning_id=plan["id"],
        occurred_at=T0 + timedelta(minutes=1),
    )
    await deliver("interventions.intervention.created.v1", created)
    # Deadline: the grace period (3 days) comes before the next due date (30 days).
    assert await run_overdue_pass(sessions, settings=settings, at=T0 + timedelta(days=3, seconds=-1)) == 0
    assert await run_overdue_pass(sessions, settings=settings, at=T0 + timedelta(days=3)) == 1
    assert await run_overdue_pass(sessions, settings=settings, at=T0 + timedelta(days=4)) == 0
    [overdue] = await outbox_envelopes(db_session, type_prefix="planning.plan.overdue.")
    assert overdue["data"] == {
        "planning_id": plan["id"],
        "equipement_id": plan["equipement_id"],
        "equipement_nom": plan["equipement"]["nom"],
        "technicien_id": tech.id,
        "occurrence_key": key,
        "intervention_id": iid,
        "due_at": iso(T0),
        "occurred_at": iso(T0 + timedelta(days=3)),
    }
    assert (await plan_state(client, manager, plan["id"]))["statut"] == "en_retard"
    # A late plan keeps generating (stopping it would make it later).
    assert await run_due_pass(sessions, settings=settings, at=T0 + timedelta(days=30)) == 1
    # Closing the late intervention brings the plan back to actif.
    closed = {**created, "statut": "cloturee", "occurred_at": (T0 + timedelta(days=5)).isoformat()}
    await deliver("interventions.intervention.closed.v1", closed)
    assert (await plan_state(client, manager, plan["id"]))["statut"] == "actif"


async def test_an_occurrence_closed_in_time_or_without_intervention(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    sessions: Sessions,
    deliver: Deliver,
    mif_settings: PlanningSettings,
    db_session: AsyncSession,
) -> None:
    done = await make_plan(frequence="journalier", prochaine_date=iso(T0))
    forgotten = await make_plan(frequence="journalier", prochaine_date=iso(T0))
    suspended_later = await make_plan(frequence="journalier", prochaine_date=iso(T0))
    await run_due_pass(sessions, settings=mif_settings, at=T0)
    iid = next(_interventions)
    # No planning_id in the event: matched as the scheduler's (actor null) preventive intervention on that
    # equipment, then closed before the deadline (the next due date, 1 day later).
    await deliver(
        "interventions.intervention.created.v1",
        intervention_data(iid, "ouverte", equipement_id=done["equipement_id"], type="preventive", actor_id=None),
    )
    await deliver(
        "interventions.intervention.closed.v1",
        intervention_data(
            iid,
            "cloturee",
            equipement_id=done["equipement_id"],
            type="preventive",
            actor_id=5,
            occurred_at=datetime.now(UTC) + timedelta(seconds=1),
        ),
    )
    await client.put(f"/api/v1/planning/{suspended_later['id']}", json={"statut": "suspendu"}, headers=manager)
    assert await run_overdue_pass(sessions, settings=mif_settings, at=T0 + timedelta(days=1)) == 2
    reported = {
        e["data"]["planning_id"]: e["data"] for e in await outbox_envelopes(db_session, type_prefix="planning.plan.")
    }
    assert set(reported) == {forgotten["id"], suspended_later["id"]}
    assert reported[forgotten["id"]]["intervention_id"] is None
    assert (await plan_state(client, manager, forgotten["id"]))["statut"] == "en_retard"
    assert (await plan_state(client, manager, suspended_later["id"]))["statut"] == "suspendu"  # stays suspended
    assert (await plan_state(client, manager, done["id"]))["statut"] == "actif"


async def test_a_manual_preventive_intervention_is_not_taken_for_the_occurrence(
    make_plan: Make, sessions: Sessions, deliver: Deliver, mif_settings: PlanningSettings, db_session: AsyncSession
) -> None:
    plan = await make_plan(frequence="journalier", prochaine_date=iso(T0))
    await run_due_pass(sessions, settings=mif_settings, at=T0)
    manual = next(_interventions)
    await deliver(
        "interventions.intervention.created.v1",
        intervention_data(manual, "ouverte", equipement_id=plan["equipement_id"], type="preventive", actor_id=12),
    )
    linked = await db_session.scalar(
        text("SELECT intervention_id FROM occurrence WHERE planning_id = :p"), {"p": plan["id"]}
    )
    assert linked is None
    generated = next(_interventions)
    await deliver(
        "interventions.intervention.created.v1",
        intervention_data(
            generated,
            "ouverte",
            equipement_id=plan["equipement_id"],
            type="preventive",
            actor_id=None,
            occurrence_key=f"{plan['id']}:{T0.isoformat()}",
        ),
    )
    linked = await db_session.scalar(
        text("SELECT intervention_id FROM occurrence WHERE planning_id = :p"), {"p": plan["id"]}
    )
    assert linked == generated
