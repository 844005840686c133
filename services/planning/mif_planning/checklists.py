"""Checklist templates: ordered steps (`verification`, `mesure` with a unit and bounds, `texte`, `photo`)
that plans carry and interventions copy (docs/planning.md, "Checklists"). Managers write them, managers
and technicians read them; every change publishes the whole template with its `version`."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_common.events import add_event
from mif_planning.checklists_schemas import ChecklistIn
from mif_planning.events import (
    ChecklistCreated,
    ChecklistDeleted,
    ChecklistEvent,
    ChecklistSnapshot,
    ChecklistUpdated,
    EtapeModele,
)
from mif_planning.models import ChecklistEtape, ChecklistModele, Plan
from mif_planning.service import ChecklistIntrouvable, ChecklistUtilisee, NomDejaPris, ReferenceInconnue


def _etapes(data: ChecklistIn) -> list[ChecklistEtape]:
    return [ChecklistEtape(ordre=n, **etape.model_dump(mode="json")) for n, etape in enumerate(data.etapes, start=1)]


def etapes_modele(checklist: ChecklistModele) -> list[EtapeModele]:
    return [
        EtapeModele(
            ordre=e.ordre,
            type=e.type,
            libelle=e.libelle,
            obligatoire=e.obligatoire,
            unite=e.unite,
            min=e.min,
            max=e.max,
            compteur_code=e.compteur_code,
        )
        for e in checklist.etapes
    ]


def snapshot(checklist: ChecklistModele) -> ChecklistSnapshot:
    """The template as a plan occurrence carries it to interventions."""
    return ChecklistSnapshot(id=checklist.id, nom=checklist.nom, etapes=etapes_modele(checklist))


async def _publish(session: AsyncSession, event_cls: type[ChecklistEvent], checklist: ChecklistModele) -> None:
    await add_event(
        session,
        event_cls(
            checklist_id=checklist.id,
            nom=checklist.nom,
            description=checklist.description,
            etapes=etapes_modele(checklist),
            version=checklist.version,
            occurred_at=checklist.date_modification,
        ),
        subject=checklist.id,
    )


async def _flush(session: AsyncSession, nom: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_checklist_modele_nom_lower" in str(exc.orig):
            raise NomDejaPris(
                f"Un modèle de checklist nommé « {nom} » existe déjà ; choisissez un autre nom. "
                f"(A checklist template named '{nom}' already exists.)",
                errors=[{"field": "nom", "message": "already used by another checklist template"}],
            ) from exc
        raise


async def _named(session: AsyncSession, nom: str, *, except_id: int | None) -> None:
    query = sa.select(ChecklistModele.id).where(sa.func.lower(ChecklistModele.nom) == nom.lower())
    if except_id is not None:
        query = query.where(ChecklistModele.id != except_id)
    if await session.scalar(query) is not None:
        raise NomDejaPris(
            f"Un modèle de checklist nommé « {nom} » existe déjà ; choisissez un autre nom. "
            f"(A checklist template named '{nom}' already exists.)",
            errors=[{"field": "nom", "message": "already used by another checklist template"}],
        )


async def create_checklist(session: AsyncSession, *, data: ChecklistIn, actor_id: int) -> ChecklistModele:
    await _named(session, data.nom, except_id=None)
    at = now()
    checklist = ChecklistModele(
        nom=data.nom,
        description=data.description,
        version=1,
        created_by=actor_id,
        date_creation=at,
        date_modification=at,
        etapes=_etapes(data),
    )
    session.add(checklist)
    await _flush(session, data.nom)
    await _publish(session, ChecklistCreated, checklist)
    return checklist


async def checklist_by_id(
    session: AsyncSession, checklist_id: int, *, for_update: bool = False
) -> ChecklistModele | None:
    query = sa.select(ChecklistModele).where(ChecklistModele.id == checklist_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def get_checklist(session: AsyncSession, *, checklist_id: int) -> ChecklistModele:
    checklist = await checklist_by_id(session, checklist_id)
    if checklist is None:
        raise ChecklistIntrouvable(
            f"Aucun modèle de checklist n°{checklist_id}. (No checklist template {checklist_id}.)"
        )
    return checklist


async def list_checklists(session: AsyncSession) -> Sequence[ChecklistModele]:
    return (await session.scalars(sa.select(ChecklistModele).order_by(ChecklistModele.id))).all()


async def update_checklist(session: AsyncSession, *, checklist_id: int, data: ChecklistIn) -> ChecklistModele:
    """Replace the template (its steps too); interventions already holding a copy keep theirs."""
    checklist = await checklist_by_id(session, checklist_id, for_update=True)
    if checklist is None:
        raise ChecklistIntrouvable(
            f"Aucun modèle de checklist n°{checklist_id}. (No checklist template {checklist_id}.)"
        )
    await _named(session, data.nom, except_id=checklist.id)
    checklist.nom = data.nom
    checklist.description = data.description
    checklist.etapes.clear()
    await session.flush()  # the old steps go before the new ones take their `ordre`
    checklist.etapes.extend(_etapes(data))
    checklist.version += 1
    checklist.date_modification = now()
    await _flush(session, data.nom)
    await _publish(session, ChecklistUpdated, checklist)
    return checklist


async def delete_checklist(session: AsyncSession, *, checklist_id: int) -> None:
    """Delete a template no plan uses (409 naming the plans otherwise)."""
    checklist = await checklist_by_id(session, checklist_id, for_update=True)
    if checklist is None:
        raise ChecklistIntrouvable(
            f"Aucun modèle de checklist n°{checklist_id}. (No checklist template {checklist_id}.)"
        )
    plans = list((await session.scalars(sa.select(Plan.id).where(Plan.checklist_id == checklist.id))).all())
    if plans:
        raise ChecklistUtilisee(
            f"Le modèle de checklist « {checklist.nom} » est utilisé par le(s) plan(s) "
            f"{', '.join(f'n°{p}' for p in plans)} ; retirez-le de ces plans d'abord. "
            f"(The checklist template is used by plans {', '.join(map(str, plans))}.)",
            plans=plans,
        )
    checklist.version += 1
    checklist.date_modification = now()
    await _publish(session, ChecklistDeleted, checklist)
    await session.delete(checklist)
    await session.flush()


async def checklist_for_plan(session: AsyncSession, checklist_id: int) -> ChecklistModele:
    """The template a plan is given (422 when it does not exist)."""
    checklist = await checklist_by_id(session, checklist_id)
    if checklist is None:
        raise ReferenceInconnue(
            f"Aucun modèle de checklist n°{checklist_id} ; créez-le d'abord. (No checklist template {checklist_id}.)",
            errors=[{"field": "checklist_id", "message": "unknown checklist template"}],
        )
    return checklist
