"""Meters of an equipment: create, read, edit, delete (docs/assets.md, "Meters and readings").

Who sees a meter is who sees its equipment (a client user: its organisation's equipment only, anything
else is "not found"); managers write.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.compteurs_schemas import CompteurCreate, CompteurUpdate
from mif_assets.equipements import get_equipement
from mif_assets.events import CompteurCreated, CompteurDeleted, CompteurEvent, CompteurUpdated
from mif_assets.models import CODES_COMPTEUR, Compteur, NatureCompteur
from mif_assets.service import EquipementIntrouvable, _plain
from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.errors import Conflict, NotFound
from mif_common.events import add_event


class CompteurIntrouvable(NotFound):
    slug = "compteur-not-found"


class CodeDejaPris(Conflict):
    slug = "compteur-code-taken"


def compteur_event(event_cls: type[CompteurEvent], compteur: Compteur) -> CompteurEvent:
    return event_cls(
        compteur_id=compteur.id,
        equipement_id=compteur.equipement_id,
        code=compteur.code,
        nom=compteur.nom,
        nature=compteur.nature,
        unite=compteur.unite,
        version=compteur.version,
        updated_at=compteur.date_modification,
    )


async def list_compteurs(session: AsyncSession, *, equipement_id: int, principal: Principal) -> list[Compteur]:
    await get_equipement(session, equipement_id=equipement_id, principal=principal)
    query = sa.select(Compteur).where(Compteur.equipement_id == equipement_id).order_by(Compteur.code)
    return list((await session.scalars(query)).all())


async def get_compteur(
    session: AsyncSession,
    *,
    equipement_id: int,
    compteur_id: int,
    principal: Principal | None,
    for_update: bool = False,
) -> Compteur:
    """The meter `compteur_id` of `equipement_id`, if `principal` may see the equipment (None: no
    row-level rule, the caller already checked)."""
    if principal is not None:
        await get_equipement(session, equipement_id=equipement_id, principal=principal)
    query = sa.select(Compteur).where(Compteur.id == compteur_id, Compteur.equipement_id == equipement_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    compteur = await session.scalar(query)
    if compteur is None:
        raise CompteurIntrouvable(f"No meter with id {compteur_id} on equipment {equipement_id}.")
    return compteur


async def _flush_code(session: AsyncSession, compteur: Compteur) -> None:
    savepoint = await session.begin_nested()
    try:
        await session.flush()
    except IntegrityError as exc:
        await savepoint.rollback()
        if "uq_compteur_equipement_id_code" in str(exc.orig):
            raise _code_taken(compteur.code, compteur.equipement_id) from exc
        if "fk_compteur_equipement_id_equipement" in str(exc.orig):
            raise EquipementIntrouvable(f"No equipment with id {compteur.equipement_id}.") from exc
        raise
    await savepoint.commit()


def _code_taken(code: str, equipement_id: int) -> CodeDejaPris:
    return CodeDejaPris(
        f"Equipment {equipement_id} already has a meter '{code}'; edit it or choose another code.",
        errors=[{"field": "code", "message": "already used on this equipment"}],
    )


async def create_compteur(
    session: AsyncSession, *, equipement_id: int, data: CompteurCreate, principal: Principal
) -> Compteur:
    await get_equipement(session, equipement_id=equipement_id, principal=principal)
    values: dict[str, Any] = _plain(data.model_dump())
    taken = await session.scalar(
        sa.select(Compteur.id).where(Compteur.equipement_id == equipement_id, Compteur.code == values["code"])
    )
    if taken is not None:
        raise _code_taken(values["code"], equipement_id)
    if values["nature"] is None:
        values["nature"] = (
            NatureCompteur.compteur.value if values["code"] in CODES_COMPTEUR else NatureCompteur.jauge.value
        )
    values["nom"] = values["nom"] or values["code"]
    stamp = now()
    compteur = Compteur(equipement_id=equipement_id, version=1, date_creation=stamp, date_modification=stamp, **values)
    session.add(compteur)
    await _flush_code(session, compteur)
    await add_event(session, compteur_event(CompteurCreated, compteur), subject=compteur.id)
    return compteur


async def update_compteur(
    session: AsyncSession, *, equipement_id: int, compteur_id: int, data: CompteurUpdate
) -> Compteur:
    compteur = await get_compteur(
        session, equipement_id=equipement_id, compteur_id=compteur_id, principal=None, for_update=True
    )
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if getattr(compteur, k) != v}
    if changes:
        for key, value in changes.items():
            setattr(compteur, key, value)
        compteur.version += 1
        compteur.date_modification = now()
        await session.flush()
        await add_event(session, compteur_event(CompteurUpdated, compteur), subject=compteur.id)
    return compteur


async def delete_compteur(session: AsyncSession, *, equipement_id: int, compteur_id: int) -> None:
    """Delete a meter and its readings."""
    compteur = await get_compteur(
        session, equipement_id=equipement_id, compteur_id=compteur_id, principal=None, for_update=True
    )
    compteur.version += 1
    compteur.date_modification = now()
    event = compteur_event(CompteurDeleted, compteur)
    await session.delete(compteur)
    await session.flush()
    await add_event(session, event, subject=compteur_id)
