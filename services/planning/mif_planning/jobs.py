"""Periodic work of the planning service: the preventive scheduler (DOMAIN.md §5), due occurrences,
reminders, overdue occurrences.

A periodic job of the service (`ServiceParts.periodic_jobs`) runs one pass every
`scheduler_interval_seconds`. Each step of a pass
works on one plan (or occurrence) per transaction: it claims it with `FOR UPDATE SKIP LOCKED`, writes
its outbox events and moves its dates in that same transaction, and commits. So:

- several replicas (or two passes at once) share the work without waiting for each other, and never
  handle the same plan at the same time;
- each occurrence's event is written once: the `occurrence` row (unique `occurrence_key`) is stamped
  (`emitted_at`, `reminder_sent_at`, `overdue_at`) in the transaction that adds the event, and a
  stamp already there means the event was already written;
- after downtime (or a plan resumed, or stored with a date far in the past) a plan generates ONE
  occurrence, the most recent one due, and records the skipped ones in its history; its next date
  becomes the next one to come. That is arithmetic, O(1) per plan however far behind it is, so a pass
  is never stuck on one plan and nothing arrives in a flood (each missed occurrence would be late
  already, and each lateness is told to people);
- a plan that would generate more than `max_occurrences_per_plan_per_hour` in an hour is suspended
  instead (the circuit breaker), and `planning.plan.suspended.v1` tells the managers.

Like the consumer wrapper, this module owns its transactions: the service functions it calls only
flush. The pass functions take the time as a parameter so tests can move the clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import FastAPI
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.datetimes import now
from mif_common.jobs import PeriodicJob
from mif_planning import occurrences
from mif_planning import occurrences_repository as occurrences_repo
from mif_planning.config import PlanningSettings

logger = logging.getLogger(__name__)

SCHEDULER_EVENTS = Counter(
    "mif_planning_scheduler_events_total", "Events written by the preventive scheduler", ["kind"]
)

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class PassResult:
    due: int = 0
    reminders: int = 0
    overdue: int = 0


async def run_due_pass(sessions: Sessions, *, settings: PlanningSettings, at: datetime | None = None) -> int:
    """Emit the due occurrences of up to `scheduler_batch_size` plans; returns how many were emitted."""
    at = at or now()
    emitted, seen = 0, set[int]()
    for _ in range(settings.scheduler_batch_size):
        async with sessions() as session, session.begin():
            plan = await occurrences_repo.claim_due_plan(session, now=at, skip=seen)
            if plan is None:
                break
            seen.add(plan.id)
            emitted += await occurrences.emit_due_occurrences(session, plan=plan, at=at, settings=settings)
    SCHEDULER_EVENTS.labels("due").inc(emitted)
    return emitted


async def run_reminder_pass(sessions: Sessions, *, settings: PlanningSettings, at: datetime | None = None) -> int:
    """Remind the next occurrences falling due within the lead time; returns how many reminders."""
    if settings.reminder_lead_minutes == 0:
        return 0
    at = at or now()
    horizon = at + timedelta(minutes=settings.reminder_lead_minutes)
    sent, seen = 0, set[int]()
    for _ in range(settings.scheduler_batch_size):
        async with sessions() as session, session.begin():
            plan = await occurrences_repo.claim_reminder_plan(session, now=at, horizon=horizon, skip=seen)
            if plan is None:
                break
            seen.add(plan.id)
            sent += await occurrences.send_reminder(session, plan=plan, at=at, settings=settings)
    SCHEDULER_EVENTS.labels("reminder").inc(sent)
    return sent


async def run_overdue_pass(sessions: Sessions, *, settings: PlanningSettings, at: datetime | None = None) -> int:
    """Report the occurrences whose intervention was not resolved by their deadline."""
    at = at or now()
    reported = 0
    for _ in range(settings.scheduler_batch_size):
        async with sessions() as session, session.begin():
            occurrence = await occurrences_repo.claim_overdue_occurrence(session, now=at)
            if occurrence is None:
                break
            await occurrences.report_overdue(session, occurrence=occurrence, at=at)
            reported += 1
    SCHEDULER_EVENTS.labels("overdue").inc(reported)
    return reported


async def run_pass(sessions: Sessions, *, settings: PlanningSettings, at: datetime | None = None) -> PassResult:
    """One full pass: due occurrences first (a due one needs no reminder), then reminders, then lateness."""
    at = at or now()
    return PassResult(
        due=await run_due_pass(sessions, settings=settings, at=at),
        reminders=await run_reminder_pass(sessions, settings=settings, at=at),
        overdue=await run_overdue_pass(sessions, settings=settings, at=at),
    )


async def _scheduler(app: FastAPI) -> bool:
    result = await run_pass(app.state.sessionmaker, settings=app.state.settings)
    if result.due or result.reminders or result.overdue:
        logger.info("scheduler pass: %d due, %d reminders, %d overdue", result.due, result.reminders, result.overdue)
    return False


def periodic_jobs(settings: PlanningSettings) -> list[PeriodicJob]:
    """The scheduler: a pass every `scheduler_interval_seconds` (a failed pass is logged and the next
    one retries; nothing it wrote half-way is committed)."""
    return [PeriodicJob("scheduler", settings.scheduler_interval_seconds, _scheduler)]
