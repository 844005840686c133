"""Queries of an intervention's checklist: its steps, the undone required ones, the template replica,
and whether a document is attached to the intervention (read from the history: interventions keeps no
document table, documents' events only write `document` history rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.replicas import upsert_if_newer
from mif_interventions.models import ActionHistorique, ChecklistRef, Historique, InterventionEtape

# Done: answered; a yes/no check only when answered yes.
NON_FAITE = sa.or_(
    InterventionEtape.rempli_le.is_(None),
    sa.and_(InterventionEtape.type == "verification", InterventionEtape.fait.is_not(True)),
)


async def etapes(session: AsyncSession, intervention_id: int) -> Sequence[InterventionEtape]:
    query = (
        sa.select(InterventionEtape)
        .where(InterventionEtape.intervention_id == intervention_id)
        .order_by(InterventionEtape.ordre)
    )
    return (await session.scalars(query)).all()


async def etape(session: AsyncSession, *, intervention_id: int, etape_id: int) -> InterventionEtape | None:
    query = sa.select(InterventionEtape).where(
        InterventionEtape.id == etape_id, InterventionEtape.intervention_id == intervention_id
    )
    return await session.scalar(query.execution_options(populate_existing=True))


async def obligatoires_non_faites(session: AsyncSession, intervention_id: int) -> Sequence[InterventionEtape]:
    query = (
        sa.select(InterventionEtape)
        .where(InterventionEtape.intervention_id == intervention_id, InterventionEtape.obligatoire, NON_FAITE)
        .order_by(InterventionEtape.ordre)
    )
    return (await session.scalars(query)).all()


async def dernier_ordre(session: AsyncSession, intervention_id: int) -> int:
    query = sa.select(sa.func.coalesce(sa.func.max(InterventionEtape.ordre), 0)).where(
        InterventionEtape.intervention_id == intervention_id
    )
    return int(await session.scalar(query) or 0)


async def checklist_deja_ajoutee(session: AsyncSession, *, intervention_id: int, checklist_id: int) -> bool:
    query = sa.select(sa.literal(1)).where(
        InterventionEtape.intervention_id == intervention_id, InterventionEtape.checklist_id == checklist_id
    )
    return await session.scalar(query.limit(1)) is not None


async def add_etapes(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(InterventionEtape), list(rows))


async def checklist_ref(session: AsyncSession, checklist_id: int) -> ChecklistRef | None:
    return await session.get(ChecklistRef, checklist_id, populate_existing=True)


async def upsert_checklist_ref(
    session: AsyncSession, *, checklist_id: int, nom: str, etapes: list[dict[str, Any]], supprime: bool, version: int
) -> bool:
    """The template's snapshot, unless the replica holds a newer version (False then). The statement runs
    on the asyncpg connection, which takes JSONB as its text."""
    values = {
        "checklist_id": checklist_id,
        "nom": nom,
        "etapes": json.dumps(etapes, ensure_ascii=False),
        "supprime": supprime,
        "version": version,
    }
    return await upsert_if_newer(
        session, ChecklistRef, key=ChecklistRef.checklist_id, freshness=ChecklistRef.version, values=values
    )


async def document_attache(session: AsyncSession, *, intervention_id: int, document_id: int) -> bool:
    """Whether documents told that `document_id` was uploaded for this intervention and not deleted since:
    the last `document` history row about it is an addition (`apres` set)."""
    key = str(document_id)
    query = (
        sa.select(Historique.apres)
        .where(
            Historique.intervention_id == intervention_id,
            Historique.action == ActionHistorique.document.value,
            sa.or_(Historique.apres["document_id"].astext == key, Historique.avant["document_id"].astext == key),
        )
        .order_by(Historique.id.desc())
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return row is not None and row.apres is not None
