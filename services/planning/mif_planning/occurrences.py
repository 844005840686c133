"""The occurrences of preventive plans: the scheduler's steps (generate the due occurrence, remind,
report an overdue one); jobs.py owns their transactions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events import add_event
from mif_common.frequences import Frequence
from mif_planning import checklists
from mif_planning import occurrences_repository as occurrences_repo
from mif_planning import replicas_repository as replicas_repo
from mif_planning import repository as repo
from mif_planning.config import PlanningSettings
from mif_planning.events import OccurrenceDue, OccurrenceEvent, OccurrenceReminder, PlanOverdue, PlanSuspended
from mif_planning.frequence import interval
from mif_planning.models import ActionHistorique, EquipementRef, Occurrence, Plan, StatutPlan
from mif_planning.plans import _historique, _historique_row
from mif_planning.service import iso

logger = logging.getLogger(__name__)


def occurrence_key(planning_id: int, due_at: datetime) -> str:
    """`"<planning_id>:<due date ISO>"` (docs/events/planning-contract.md): stable across re-runs."""
    return f"{planning_id}:{due_at.astimezone(UTC).isoformat()}"


async def _default_assignee(session: AsyncSession, plan: Plan) -> int | None:
    """The plan's technician, if it is still active (a deleted one is not assigned new work)."""
    if plan.technicien_id is None:
        return None
    technicien = await repo.technicien_by_id(session, plan.technicien_id)
    return technicien.id if technicien is not None and technicien.is_active else None


def deadline(due_at: datetime, frequence: Frequence, settings: PlanningSettings) -> datetime:
    """When an occurrence whose intervention is not resolved becomes overdue: the next due date, or
    the grace period after its own due date if that comes first."""
    return due_at + min(interval(frequence), timedelta(minutes=settings.overdue_grace_minutes))


async def emit_due_occurrences(session: AsyncSession, *, plan: Plan, at: datetime, settings: PlanningSettings) -> int:
    """Generate a claimed (locked) plan's due occurrence: ONE `planning.occurrence.due.v1`, for the most
    recent occurrence due by `at`, however many were missed (a stopped suite, a plan resumed after a
    suspension, a date far in the past), as cron-like schedulers do: the missed ones would all be late
    already. The skipped ones go to the plan's history; `derniere_date` becomes the generated one and
    `prochaine_date` the next one to come. O(1) in the number of missed intervals (arithmetic, no loop).

    The occurrence key (plan id + due date) keeps it exactly-once. Before generating, the circuit breaker:
    a plan that would exceed `max_occurrences_per_plan_per_hour` is suspended instead. Returns how many
    events were written (0 or 1)."""
    frequence, first = plan.calendrier()
    step = interval(frequence)
    if first > at:
        return 0
    skipped = (at - first) // step  # whole intervals from the first missed occurrence to now
    due = first + skipped * step  # the most recent occurrence due by `at`
    key = occurrence_key(plan.id, due)
    equipement = await replicas_repo.equipement_ref(session, plan.equipement_id)
    technicien_id = await _default_assignee(session, plan)
    existing = await occurrences_repo.occurrence_by_key(session, key)
    if (existing is None or existing.emitted_at is None) and await _circuit_breaker_trips(
        session, plan=plan, due=due, at=at, settings=settings, equipement=equipement, technicien_id=technicien_id
    ):
        return 0
    if skipped:
        await repo.add_historique(
            session,
            _skipped_rows(plan.id, first=first, count=skipped, step=step, replaced_by=key, at=at, settings=settings),
        )
    fresh = await occurrences_repo.record_occurrence(
        session,
        values=_occurrence_row(
            plan,
            key=key,
            due=due,
            technicien_id=technicien_id,
            emitted_at=at,
            deadline_at=deadline(due, frequence, settings),
        ),
        stamp="emitted_at",
    )
    if fresh:
        checklist = await checklists.checklist_by_id(session, plan.checklist_id) if plan.checklist_id else None
        await _publish_occurrence(
            session,
            OccurrenceDue,
            plan=plan,
            key=key,
            due=due,
            equipement=equipement,
            technicien_id=technicien_id,
            at=at,
            checklist=checklists.snapshot(checklist) if checklist is not None else None,
        )
    plan.derniere_date = due
    plan.prochaine_date = due + step
    plan.date_modification = at
    await session.flush()
    return int(fresh)


async def _publish_occurrence(
    session: AsyncSession,
    event_cls: type[OccurrenceEvent],
    *,
    plan: Plan,
    key: str,
    due: datetime,
    equipement: EquipementRef | None,
    technicien_id: int | None,
    at: datetime,
    **extra: Any,
) -> None:
    """`planning.occurrence.due|reminder.v1` for one occurrence of `plan`."""
    await add_event(
        session,
        event_cls(
            occurrence_key=key,
            planning_id=plan.id,
            equipement_id=plan.equipement_id,
            equipement_nom=equipement.nom if equipement else None,
            technicien_id=technicien_id,
            due_at=due,
            frequence=plan.frequence,
            commentaire=plan.commentaire,
            occurred_at=at,
            **extra,
        ),
        subject=plan.id,
    )


def _skipped_rows(
    planning_id: int,
    *,
    first: datetime,
    count: int,
    step: timedelta,
    replaced_by: str,
    at: datetime,
    settings: PlanningSettings,
) -> list[dict[str, Any]]:
    """History rows for `count` skipped occurrences from `first` on, oldest first: the most recent
    `scheduler_skipped_history_cap` one row each, the older ones in one summary row."""
    recorded = min(count, settings.scheduler_skipped_history_cap)
    summarised = count - recorded
    action = ActionHistorique.occurrences_sautees
    rows = []
    if summarised:
        detail = {
            "nombre": summarised,
            "premiere": iso(first),
            "derniere": iso(first + (summarised - 1) * step),
            "remplacees_par": replaced_by,
        }
        rows.append(_historique_row(planning_id, action, detail, user_id=None, at=at))
    for n in range(summarised, count):
        due = first + n * step
        detail = {
            "nombre": 1,
            "due_at": iso(due),
            "occurrence_key": occurrence_key(planning_id, due),
            "remplacees_par": replaced_by,
        }
        rows.append(_historique_row(planning_id, action, detail, user_id=None, at=at))
    return rows


async def _circuit_breaker_trips(
    session: AsyncSession,
    *,
    plan: Plan,
    due: datetime,
    at: datetime,
    settings: PlanningSettings,
    equipement: EquipementRef | None,
    technicien_id: int | None,
) -> bool:
    """Whether generating one more occurrence of the plan would exceed `max_occurrences_per_plan_per_hour`
    over the last hour (since its last automatic suspension, if later: a manager who resumes a plan gives
    it a fresh hour). If so the plan is suspended, its history says why, and `planning.plan.suspended.v1`
    tells the managers, once (the plan, suspended, is no longer claimed)."""
    limit = settings.max_occurrences_per_plan_per_hour
    generated = await occurrences_repo.emitted_between(session, plan.id, after=at - timedelta(hours=1), until=at)
    if generated < limit:
        return False
    reason = (
        f"Le plan n°{plan.id} a déjà généré {generated} intervention(s) dans la dernière heure (limite : {limit} "
        f"par heure) ; il est suspendu pour ne pas créer d'interventions en rafale. Vérifiez sa prochaine date et "
        "sa fréquence, puis réactivez-le (statut actif)."
    )
    previous = plan.statut
    plan.statut = StatutPlan.suspendu.value
    plan.date_modification = at
    await session.flush()
    detail = {
        "raison": reason,
        "generees_derniere_heure": generated,
        "limite_par_heure": limit,
        "occurrence_non_generee": iso(due),
        "statut_precedent": previous,
    }
    await _historique(session, plan.id, ActionHistorique.suspension_automatique, detail, user_id=None, at=at)
    await add_event(
        session,
        PlanSuspended(
            planning_id=plan.id,
            equipement_id=plan.equipement_id,
            equipement_nom=equipement.nom if equipement else None,
            technicien_id=technicien_id,
            frequence=plan.frequence,
            due_at=due,
            generated_last_hour=generated,
            max_per_hour=limit,
            reason=reason,
            occurred_at=at,
        ),
        subject=plan.id,
    )
    logger.warning("plan %s suspended by the circuit breaker: %s", plan.id, reason)
    return True


def _occurrence_row(
    plan: Plan, *, key: str, due: datetime, technicien_id: int | None, **stamps: datetime
) -> dict[str, Any]:
    """An occurrence of `plan` as `record_occurrence` stores it, with what the caller stamps on it."""
    return {
        "occurrence_key": key,
        "planning_id": plan.id,
        "equipement_id": plan.equipement_id,
        "technicien_id": technicien_id,
        "due_at": due,
        **stamps,
    }


async def send_reminder(session: AsyncSession, *, plan: Plan, at: datetime, settings: PlanningSettings) -> bool:
    """`planning.occurrence.reminder.v1` for the plan's next occurrence, once per occurrence key."""
    _, due = plan.calendrier()
    key = occurrence_key(plan.id, due)
    technicien_id = await _default_assignee(session, plan)
    fresh = await occurrences_repo.record_occurrence(
        session,
        values=_occurrence_row(plan, key=key, due=due, technicien_id=technicien_id, reminder_sent_at=at),
        stamp="reminder_sent_at",
    )
    if fresh:
        await _publish_occurrence(
            session,
            OccurrenceReminder,
            plan=plan,
            key=key,
            due=due,
            equipement=await replicas_repo.equipement_ref(session, plan.equipement_id),
            technicien_id=technicien_id,
            at=at,
            lead_minutes=settings.reminder_lead_minutes,
        )
    return fresh


async def report_overdue(session: AsyncSession, *, occurrence: Occurrence, at: datetime) -> None:
    """A claimed occurrence is past its deadline: the plan goes `en_retard` and the fact is published,
    once (`overdue_at`)."""
    occurrence.overdue_at = at
    plan = await repo.plan_by_id(session, occurrence.planning_id, for_update=True)
    if plan is not None and plan.statut == StatutPlan.actif:
        plan.statut = StatutPlan.en_retard.value
        plan.date_modification = at
    equipement = await replicas_repo.equipement_ref(session, occurrence.equipement_id)
    await session.flush()
    await add_event(
        session,
        PlanOverdue(
            planning_id=occurrence.planning_id,
            equipement_id=occurrence.equipement_id,
            equipement_nom=equipement.nom if equipement else None,
            technicien_id=occurrence.technicien_id,
            occurrence_key=occurrence.occurrence_key,
            intervention_id=occurrence.intervention_id,
            due_at=occurrence.due_at,
            occurred_at=at,
        ),
        subject=occurrence.planning_id,
    )
