"""Reactions to interventions' events: the intervention replica and its side effects on an
equipment's statut (DOMAIN.md §4), and a checklist measure recorded as a meter reading."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets import releves_repository
from mif_assets import repository as repo
from mif_assets.equipements import _record_statut
from mif_assets.models import Equipement, SourceReleve, SourceStatut, StatutEquipement
from mif_assets.releves import Lecture, ReleveRefuse, ingest
from mif_assets.schemas import ChecklistMesureFact, InterventionFact
from mif_common.datetimes import now

logger = logging.getLogger(__name__)


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


async def checklist_measure(session: AsyncSession, *, fact: ChecklistMesureFact, event_id: str) -> None:
    """A measure filled on an intervention's checklist becomes a reading (source `manuel`) of the
    equipment's meter of that code, through the same `releves.ingest` as HTTP and MQTT batches (so one
    `assets.releves.recorded.v1`). A reading already stored for that meter and instant is a duplicate,
    nothing new. What the meter cannot take is logged and skipped, never retried: no meter of that code
    on the equipment (deleted, or a template's code the equipment lacks), or a reading the meter refuses
    (a counter value lower than the one before it, an instant in the future): a technician's measure
    must not block the consumer, and the checklist keeps the value anyway."""
    compteur = await releves_repository.lock_compteur_by_code(
        session, equipement_id=fact.equipement_id, code=fact.compteur_code
    )
    if compteur is None:
        logger.warning(
            "Checklist measure of intervention %s (step %s, event %s) skipped: equipment %s has no meter %r",
            fact.intervention_id,
            fact.etape_id,
            event_id,
            fact.equipement_id,
            fact.compteur_code,
        )
        return
    lecture = Lecture(horodatage=fact.horodatage, valeur=fact.valeur)
    try:
        await ingest(session, compteur, [lecture], SourceReleve.manuel.value)
    except ReleveRefuse as refused:
        logger.warning(
            "Checklist measure of intervention %s (step %s, event %s) skipped: %s",
            fact.intervention_id,
            fact.etape_id,
            event_id,
            refused.detail,
        )
