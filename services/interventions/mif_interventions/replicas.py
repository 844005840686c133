"""Reactions to other services' facts: the equipment, technician and user replicas, and documents
attached to an intervention (a history row)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_interventions import repository as repo
from mif_interventions.models import ActionHistorique
from mif_interventions.schemas import DocumentFact, EquipementFact, TechnicienFact, UserFact
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
