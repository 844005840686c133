"""Queries of plan occurrences and the scheduler's claims (FOR UPDATE SKIP LOCKED: replicas never wait
for nor double each other)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_planning.models import (
    INTERVENTION_RESOLUE,
    STATUTS_GENERATEURS,
    ActionHistorique,
    InterventionRef,
    Occurrence,
    Plan,
    PlanHistorique,
)


async def emitted_between(session: AsyncSession, planning_id: int, *, after: datetime, until: datetime) -> int:
    """How many occurrences of a plan were generated in (after, until], counted from the circuit breaker's
    last suspension of the plan instead when that is later (one statement)."""
    last_suspension = (
        sa.select(sa.func.max(PlanHistorique.horodatage))
        .where(
            PlanHistorique.planning_id == planning_id,
            PlanHistorique.action == ActionHistorique.suspension_automatique.value,
        )
        .scalar_subquery()
    )
    # GREATEST ignores a NULL: a plan never suspended counts from `after`.
    start = sa.func.greatest(sa.literal(after, type_=Occurrence.emitted_at.type), last_suspension)
    value = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Occurrence)
        .where(Occurrence.planning_id == planning_id, Occurrence.emitted_at > start, Occurrence.emitted_at <= until)
    )
    return int(value or 0)


async def claim_due_plan(session: AsyncSession, *, now: datetime, skip: Collection[int]) -> Plan | None:
    """One generating plan whose next date has come, locked; plans another replica holds are skipped."""
    query = (
        sa.select(Plan)
        .where(Plan.statut.in_(STATUTS_GENERATEURS), Plan.prochaine_date <= now)
        .order_by(Plan.prochaine_date, Plan.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(Plan.id.not_in(skip))
    return await session.scalar(query)


async def claim_reminder_plan(
    session: AsyncSession, *, now: datetime, horizon: datetime, skip: Collection[int]
) -> Plan | None:
    """One generating plan due within (now, horizon] whose next occurrence had no reminder yet, locked."""
    reminded = (
        sa.select(Occurrence.id)
        .where(
            Occurrence.planning_id == Plan.id,
            Occurrence.due_at == Plan.prochaine_date,
            Occurrence.reminder_sent_at.is_not(None),
        )
        .exists()
    )
    query = (
        sa.select(Plan)
        .where(
            Plan.statut.in_(STATUTS_GENERATEURS),
            Plan.prochaine_date > now,
            Plan.prochaine_date <= horizon,
            ~reminded,
        )
        .order_by(Plan.prochaine_date, Plan.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(Plan.id.not_in(skip))
    return await session.scalar(query)


async def claim_overdue_occurrence(session: AsyncSession, *, now: datetime) -> Occurrence | None:
    """One emitted occurrence past its deadline, not yet reported, whose intervention is not resolved."""
    resolved = (
        sa.select(InterventionRef.intervention_id)
        .where(
            InterventionRef.intervention_id == Occurrence.intervention_id,
            InterventionRef.statut.in_(INTERVENTION_RESOLUE),
        )
        .exists()
    )
    query = (
        sa.select(Occurrence)
        .where(
            Occurrence.emitted_at.is_not(None),
            Occurrence.overdue_at.is_(None),
            Occurrence.deadline_at <= now,
            ~resolved,
        )
        .order_by(Occurrence.deadline_at, Occurrence.id)
        .limit(1)
        .with_for_update(of=Occurrence, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(query)


async def record_occurrence(session: AsyncSession, *, values: dict[str, Any], stamp: str) -> bool:
    """Create the occurrence or stamp an existing one (`emitted_at` or `reminder_sent_at`), only if that
    stamp is still empty: True exactly once per occurrence key and stamp."""
    insert = pg_insert(Occurrence).values(**values)
    column = getattr(Occurrence, stamp)
    upsert = insert.on_conflict_do_update(
        index_elements=["occurrence_key"],
        set_={k: insert.excluded[k] for k in values if k not in ("occurrence_key", "reminder_sent_at", "emitted_at")}
        | {stamp: insert.excluded[stamp]},
        where=column.is_(None),
    ).returning(Occurrence.id)
    return await session.scalar(upsert) is not None


async def occurrence_by_key(session: AsyncSession, key: str) -> Occurrence | None:
    return await session.scalar(sa.select(Occurrence).where(Occurrence.occurrence_key == key))


async def occurrence_by_id(session: AsyncSession, occurrence_id: int, *, for_update: bool = False) -> Occurrence | None:
    query = sa.select(Occurrence).where(Occurrence.id == occurrence_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def occurrence_of_intervention(session: AsyncSession, intervention_id: int) -> Occurrence | None:
    return await session.scalar(
        sa.select(Occurrence)
        .where(Occurrence.intervention_id == intervention_id)
        .execution_options(populate_existing=True)
    )


async def oldest_unlinked_occurrence(
    session: AsyncSession, *, planning_id: int | None, equipement_id: int | None
) -> Occurrence | None:
    """The oldest emitted occurrence still waiting for its intervention, of one plan or one equipment."""
    query = sa.select(Occurrence).where(Occurrence.emitted_at.is_not(None), Occurrence.intervention_id.is_(None))
    if planning_id is not None:
        query = query.where(Occurrence.planning_id == planning_id)
    if equipement_id is not None:
        query = query.where(Occurrence.equipement_id == equipement_id)
    return await session.scalar(query.order_by(Occurrence.due_at, Occurrence.id).limit(1))


async def has_open_overdue(session: AsyncSession, planning_id: int) -> bool:
    """Whether a plan still has an overdue occurrence whose intervention is not resolved."""
    resolved = (
        sa.select(InterventionRef.intervention_id)
        .where(
            InterventionRef.intervention_id == Occurrence.intervention_id,
            InterventionRef.statut.in_(INTERVENTION_RESOLUE),
        )
        .exists()
    )
    return bool(
        await session.scalar(
            sa.select(
                sa.exists().where(Occurrence.planning_id == planning_id, Occurrence.overdue_at.is_not(None), ~resolved)
            )
        )
    )


def occurrences_query(*, technicien_id: int | None, start: datetime, end: datetime) -> sa.Select[Occurrence, str]:
    """Emitted occurrences due in [start, end), with the statut of their intervention."""
    query = (
        sa.select(Occurrence, InterventionRef.statut)
        .outerjoin(InterventionRef, InterventionRef.intervention_id == Occurrence.intervention_id)
        .where(Occurrence.emitted_at.is_not(None), Occurrence.due_at >= start, Occurrence.due_at < end)
    )
    if technicien_id is not None:
        query = query.where(Occurrence.technicien_id == technicien_id)
    return query.order_by(Occurrence.due_at, Occurrence.id)
