"""Reactions to interventions' events: the intervention replica and its side effects on an
equipment's statut (DOMAIN.md §4)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets import repository as repo
from mif_assets.equipements import _record_statut
from mif_assets.models import Equipement, SourceStatut, StatutEquipement
from mif_assets.schemas import InterventionFact
from mif_common.datetimes import now


async def _track_intervention(session: AsyncSession, fact: InterventionFact) -> tuple[bool, Equipement | None]:
    """Lock the equipment (serialising every change to its statut), then record the fact in the
    replica. Returns whether the fact is newer than what the replica held, and the equipment."""
    equipement = await repo.equipement_by_id(session, fact.equipement_id, for_update=True)
    fresh = await repo.upsert_intervention_ref(
        session,
        intervention_id=fact.intervention_id,
        equipement_id=fact.equipement_id,
        statut=fact.statut,
        occurred_at=fact.occurred_at,
    )
    return fresh, equipement


async def _set_statut_from_event(
    session: AsyncSession,
    equipement: Equipement | None,
    *,
    cible: StatutEquipement,
    motif: str,
    fact: InterventionFact,
    event_id: str,
) -> None:
    # A retired equipment is out of service for good: interventions never bring it back.
    if equipement is None or equipement.statut in (StatutEquipement.retire, cible):
        return
    ancien = equipement.statut
    equipement.statut = cible.value
    equipement.version += 1
    equipement.date_modification = now()
    await session.flush()
    await _record_statut(
        session,
        equipement,
        ancien=ancien,
        motif=motif,
        source=SourceStatut.event,
        user_id=fact.actor_id,
        event_id=event_id,
        intervention_id=fact.intervention_id,
    )


async def intervention_created(session: AsyncSession, *, fact: InterventionFact, event_id: str) -> None:
    """A corrective, urgent intervention puts its equipment `en panne`."""
    fresh, equipement = await _track_intervention(session, fact)
    if fresh and fact.type == "corrective" and (fact.priorite == "urgente" or fact.urgence):
        await _set_statut_from_event(
            session,
            equipement,
            cible=StatutEquipement.panne,
            motif=f"Intervention corrective urgente n°{fact.intervention_id} : {fact.titre}"[:500],
            fact=fact,
            event_id=event_id,
        )


async def intervention_work_started(session: AsyncSession, *, fact: InterventionFact, event_id: str, verb: str) -> None:
    """Work in progress (started or resumed) puts the equipment `en maintenance`."""
    fresh, equipement = await _track_intervention(session, fact)
    if fresh:
        action = "reprise" if verb == "resumed" else "démarrée"
        await _set_statut_from_event(
            session,
            equipement,
            cible=StatutEquipement.maintenance,
            motif=f"Intervention n°{fact.intervention_id} {action}",
            fact=fact,
            event_id=event_id,
        )


_ENDED = {"closed": "clôturée", "cancelled": "annulée", "archived": "archivée"}


async def intervention_ended(session: AsyncSession, *, fact: InterventionFact, event_id: str, verb: str) -> None:
    """Closing (cancelling, archiving) the last open intervention makes the equipment `operationnel`."""
    fresh, equipement = await _track_intervention(session, fact)
    if not fresh or equipement is None or await repo.has_open_interventions(session, equipement.id):
        return
    await _set_statut_from_event(
        session,
        equipement,
        cible=StatutEquipement.operationnel,
        motif=f"Intervention n°{fact.intervention_id} {_ENDED.get(verb, verb)} ; plus aucune intervention ouverte",
        fact=fact,
        event_id=event_id,
    )


async def intervention_updated(session: AsyncSession, *, fact: InterventionFact) -> None:
    """An edit only keeps the replica current (it may move the intervention to another equipment)."""
    await _track_intervention(session, fact)
