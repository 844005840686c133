"""Reactions to other services' facts: the users, equipment and interventions replicas, and what
they change here (a technician's name or availability, plans of a retired equipment, the link of an
occurrence to its intervention, a late plan released)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_planning import occurrences_repository as occurrences_repo
from mif_planning import replicas_repository as replicas_repo
from mif_planning import repository as repo
from mif_planning.models import (
    DISPONIBILITES_MANUELLES,
    INTERVENTION_EN_COURS,
    INTERVENTION_RESOLUE,
    Disponibilite,
    Occurrence,
    StatutPlan,
)
from mif_planning.schemas import EquipementFact, InterventionFact, UserFact
from mif_planning.techniciens import _changed


async def remember_user(session: AsyncSession, *, fact: UserFact, at: datetime) -> None:
    """Record what auth says about a user; a technician whose name or address changed is announced."""
    before = await replicas_repo.user_ref(session, fact.user_id)
    shown = (before.username, before.email, before.full_name) if before else None
    fresh = await replicas_repo.upsert_user_ref(session, fact=fact, synced_at=at)
    if not fresh or shown is None or shown == (fact.username, fact.email, fact.full_name):
        return
    technicien = await repo.technicien_of_user(session, fact.user_id, for_update=True)
    if technicien is not None:
        await _changed(session, technicien, at=now())


async def remember_equipement(session: AsyncSession, *, fact: EquipementFact, deleted: bool) -> None:
    """Record what assets says about an equipment. Once it is retired or deleted, its plans end
    (`termine`): nothing is generated for equipment out of service."""
    fresh = await replicas_repo.upsert_equipement_ref(session, fact=fact, supprime=deleted)
    if not fresh or not (deleted or fact.statut == "retire"):
        return
    ongoing = [StatutPlan.actif.value, StatutPlan.en_retard.value, StatutPlan.suspendu.value]
    at = now()
    for plan in await repo.plans_of_equipement(session, fact.equipement_id, ongoing):
        plan.statut = StatutPlan.termine.value
        plan.date_modification = at
    await session.flush()


async def _refresh_disponibilites(
    session: AsyncSession, technicien_ids: set[int], *, at: datetime, fact: InterventionFact
) -> None:
    """`occupe` while an assigned intervention is `en_cours`, `disponible` when none is; an absence
    set by a person (conge, formation, indisponible) is never overridden. The profile is loaded (for
    its event) only when its availability really changes."""
    for row in await repo.lock_disponibilites(session, technicien_ids):
        if not row["is_active"] or row["disponibilite"] in DISPONIBILITES_MANUELLES:
            continue
        # The fact's own technician, its intervention now `en_cours` (written above, in this
        # transaction): busy without asking. Only leaving `en_cours` needs to look at the others.
        busy = (row["id"] == fact.technicien_id and fact.statut == INTERVENTION_EN_COURS) or (
            await replicas_repo.has_intervention_en_cours(session, row["id"])
        )
        target = Disponibilite.occupe if busy else Disponibilite.disponible
        if row["disponibilite"] != target.value:
            technicien = await repo.technicien_by_id(session, row["id"])
            assert technicien is not None  # locked above
            technicien.disponibilite = target.value
            await _changed(session, technicien, at=at)


async def _link_occurrence(session: AsyncSession, fact: InterventionFact) -> Occurrence | None:
    """The plan occurrence a preventive intervention was generated for, linked on first sight.

    Matched by the event's `occurrence_key` when it carries one, else by its `planning_id` (the oldest
    occurrence of that plan still waiting for its intervention), else, for an intervention created by
    the scheduler (`actor_id` null), by its equipment (the oldest waiting occurrence of that equipment).
    """
    linked = await occurrences_repo.occurrence_of_intervention(session, fact.intervention_id)
    if linked is not None or fact.type != "preventive":
        return linked
    for _ in range(3):
        candidate = await _unlinked_occurrence_for(session, fact)
        if candidate is None:
            return None
        # Lock the plan before its occurrence: that is the order of every writer of plans (API,
        # scheduler; deleting a plan cascades to its occurrences). The reverse order deadlocked with a
        # plan deleted while its intervention's event was being handled.
        if await repo.plan_by_id(session, candidate.planning_id, for_update=True) is None:
            return None
        occurrence = await occurrences_repo.occurrence_by_id(session, candidate.id, for_update=True)
        if occurrence is not None and occurrence.intervention_id is None:
            occurrence.intervention_id = fact.intervention_id
            await session.flush()
            return occurrence
        if fact.occurrence_key:
            return None  # that exact occurrence is taken (or gone): nothing else to link
    return None


async def _unlinked_occurrence_for(session: AsyncSession, fact: InterventionFact) -> Occurrence | None:
    if fact.occurrence_key:
        occurrence = await occurrences_repo.occurrence_by_key(session, fact.occurrence_key)
        return occurrence if occurrence is not None and occurrence.intervention_id is None else None
    if fact.planning_id is not None:
        return await occurrences_repo.oldest_unlinked_occurrence(
            session, planning_id=fact.planning_id, equipement_id=None
        )
    if fact.actor_id is None:
        return await occurrences_repo.oldest_unlinked_occurrence(
            session, planning_id=None, equipement_id=fact.equipement_id
        )
    return None


def _availability_concerned(previous: Any, fact: InterventionFact) -> set[int]:
    """The technicians whose availability this fact may change: availability only depends on having an
    intervention `en_cours`, so a fact that neither enters nor leaves that statut, nor moves an
    intervention in it between technicians, concerns nobody."""
    before = (previous["technicien_id"], previous["statut"]) if previous is not None else (None, None)
    after = (fact.technicien_id, fact.statut)
    if before == after or INTERVENTION_EN_COURS not in (before[1], after[1]):
        return set()
    return {t for t in (before[0], after[0]) if t is not None}


async def track_intervention(session: AsyncSession, *, fact: InterventionFact) -> None:
    """Keep the replica current; then the availability of the technicians concerned, the link to a
    plan occurrence, and a late plan that its last overdue occurrence no longer holds back."""
    resolved = fact.statut in INTERVENTION_RESOLUE
    fresh, previous = await replicas_repo.record_intervention(
        session,
        values={
            "intervention_id": fact.intervention_id,
            "technicien_id": fact.technicien_id,
            "equipement_id": fact.equipement_id,
            "statut": fact.statut,
            "type": fact.type,
            "titre": fact.titre,
            "priorite": fact.priorite,
            "planning_id": fact.planning_id,
            "date_limite": fact.date_limite,
            "created_at": fact.occurred_at,
            "started_at": fact.occurred_at if fact.statut == INTERVENTION_EN_COURS else None,
            "ended_at": fact.occurred_at if resolved else None,
            "occurred_at": fact.occurred_at,
        },
    )
    if not fresh:
        return
    # Only a preventive intervention is linked to an occurrence, and only a resolved one can release
    # its plan from `en_retard`: the other facts need not look.
    occurrence = await _link_occurrence(session, fact) if fact.type == "preventive" or resolved else None
    at = now()
    await _refresh_disponibilites(session, _availability_concerned(previous, fact), at=at, fact=fact)
    if resolved and occurrence is not None and occurrence.overdue_at is not None:
        plan = await repo.plan_by_id(session, occurrence.planning_id, for_update=True)
        if (
            plan is not None
            and plan.statut == StatutPlan.en_retard
            and not await occurrences_repo.has_open_overdue(session, plan.id)
        ):
            plan.statut = StatutPlan.actif.value
            plan.date_modification = at
            await session.flush()
