"""Reactions to other services' facts: the equipment, technician and user replicas, documents
attached to an intervention (a history row), and the parts cost inventory reports for an intervention."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_interventions import parts_repository
from mif_interventions import repository as repo
from mif_interventions.models import ActionHistorique
from mif_interventions.schemas import DocumentFact, EquipementFact, PartsCostFact, TechnicienFact, UserFact
from mif_interventions.service import Auteur, _historiser

logger = logging.getLogger(__name__)


async def remember_equipement(session: AsyncSession, *, fact: EquipementFact) -> None:
    """An equipment's snapshot from assets; an older version than the replica's is ignored."""
    fresh = await repo.upsert_equipement_ref(
        session,
        id=fact.equipement_id,
        nom=fact.nom,
        client_id=fact.client_id,
        statut=fact.statut,
        version=fact.version,
        updated_at=fact.updated_at,
    )
    if fresh:
        await repo.fill_client_of_equipement(session, equipement_id=fact.equipement_id, client_id=fact.client_id)


async def forget_equipement(session: AsyncSession, *, fact: EquipementFact) -> None:
    await repo.delete_equipement_ref(session, equipement_id=fact.equipement_id, version=fact.version)


async def remember_technicien(session: AsyncSession, *, fact: TechnicienFact) -> None:
    await repo.upsert_technicien_ref(
        session,
        technicien_id=fact.technicien_id,
        user_id=fact.user_id,
        full_name=fact.full_name,
        is_active=fact.is_active,
        version=fact.version,
    )


async def remember_user(session: AsyncSession, *, fact: UserFact, event_time: datetime) -> None:
    await repo.upsert_user_ref(
        session,
        user_id=fact.user_id,
        role=fact.role,
        client_id=fact.client_id,
        is_active=fact.is_active,
        event_time=event_time,
    )


async def record_document(session: AsyncSession, *, fact: DocumentFact, deleted: bool = False) -> None:
    """A document attached to (or removed from) an intervention: a history row (documents owns the file)."""
    intervention = await repo.intervention_by_id(session, fact.intervention_id)
    if intervention is None:
        logger.warning("document %s refers to unknown intervention %s", fact.document_id, fact.intervention_id)
        return
    auteur = Auteur(
        principal=None,
        user_agent="mif-documents (event)",
        on_behalf_of=fact.deleted_by if deleted else fact.uploaded_by,
    )
    document = {"document_id": fact.document_id, "filename": fact.filename, "categorie": fact.categorie}
    _historiser(
        session,
        intervention,
        action=ActionHistorique.document,
        auteur=auteur,
        at=now(),
        remarque=("Document supprimé : " if deleted else "Document ajouté : ")
        + (fact.filename or str(fact.document_id)),
        avant=document if deleted else None,
        apres=None if deleted else document,
    )
    await session.flush()


def montant(centimes: int) -> str:
    """Centimes as French write dirhams: `1 234,50 MAD` (a no-break space between thousands, so a
    figure never wraps)."""
    dirhams, reste = divmod(centimes, 100)
    return f"{dirhams:,}".replace(",", "\u00a0") + f",{reste:02d} MAD"


def _lignes(n: int) -> str:
    return "aucune ligne" if n == 0 else "1 ligne" if n == 1 else f"{n} lignes"


@dataclass(frozen=True, slots=True)
class _Ecrite:
    """The intervention as the parts cost statement answered it (it does not load the row)."""

    id: int
    statut: str


async def record_parts_cost(session: AsyncSession, *, fact: PartsCostFact) -> None:
    """inventory's parts cost of an intervention: stored when its version is above the stored one (a
    duplicate or an older event changes nothing), with a `pieces` history row. An intervention this
    service does not know is logged and skipped: inventory may cost parts on an id that never existed
    here, and no retry would change that. The cost is stored whatever the statut (a return after the
    closing is still a real cost), without touching `version` (the ETag): it is inventory's figure, not
    an edit, so it never makes a user's `If-Match` stale."""
    applied = await parts_repository.apply_parts_cost(
        session, intervention_id=fact.intervention_id, cout_pieces=fact.cout_pieces, version=fact.version
    )
    if applied is None:
        logger.warning("parts cost version %s refers to unknown intervention %s", fact.version, fact.intervention_id)
        return
    if applied.statut is None:
        logger.info(
            "parts cost version %s of intervention %s ignored: version %s already applied",
            fact.version,
            fact.intervention_id,
            applied.previous_version,
        )
        return
    auteur = Auteur(principal=None, user_agent="mif-inventory (event)", on_behalf_of=fact.actor_id)
    _historiser(
        session,
        _Ecrite(id=fact.intervention_id, statut=applied.statut),
        action=ActionHistorique.pieces,
        auteur=auteur,
        at=now(),
        remarque=f"Coût des pièces : {montant(fact.cout_pieces)} ({_lignes(len(fact.lignes))})",
        avant={"cout_pieces": applied.previous_cout},
        apres={"cout_pieces": fact.cout_pieces},
    )
    await session.flush()
