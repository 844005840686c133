"""The inventory service's reactions to other services' events (`handlers.py` calls them): who may use
parts on which intervention, the reservations a finished intervention leaves behind, and the
equipment types compatible parts are listed for."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mif_inventory import replicas_repository as replicas_repo
from mif_inventory.interventions_pieces import release_all
from mif_inventory.models import STATUTS_FINAUX
from mif_inventory.schemas import EquipementFact, InterventionFact, TechnicienFact


async def intervention_changed(session: AsyncSession, *, fact: InterventionFact) -> bool:
    """Keep the replica current (older facts are ignored); a closed, cancelled or archived intervention
    gives back what is still reserved for it. Returns whether the fact was newer than the replica."""
    fresh = await replicas_repo.upsert_intervention_ref(
        session,
        intervention_id=fact.intervention_id,
        equipement_id=fact.equipement_id,
        client_id=fact.client_id,
        technicien_id=fact.technicien_id,
        statut=fact.statut,
        occurred_at=fact.occurred_at,
    )
    # Whatever the order facts arrive in: a finished intervention never keeps a reservation (a later
    # reservation is refused by its statut, so releasing on an older final fact loses nothing).
    if fact.statut in STATUTS_FINAUX:
        await release_all(session, fact.intervention_id)
    return fresh


async def technicien_changed(session: AsyncSession, *, fact: TechnicienFact) -> bool:
    """`planning.technicien.*`: who (user id) is behind a technician id; older versions are ignored."""
    return await replicas_repo.upsert_technicien_ref(
        session, technicien_id=fact.technicien_id, user_id=fact.user_id, version=fact.version
    )


async def equipement_changed(session: AsyncSession, *, fact: EquipementFact, supprime: bool = False) -> bool:
    """`assets.equipement.*`: an equipment's type (compatible parts); older snapshots are ignored."""
    return await replicas_repo.upsert_equipement_ref(
        session, equipement_id=fact.equipement_id, type_=fact.type, updated_at=fact.updated_at, supprime=supprime
    )
