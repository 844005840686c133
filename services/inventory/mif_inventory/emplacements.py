"""Storage locations: the central store, site stores, technicians' vans."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_inventory import repository as repo
from mif_inventory.models import Emplacement, TypeEmplacement
from mif_inventory.schemas import EmplacementCreate, EmplacementUpdate
from mif_inventory.service import EmplacementIntrouvable, EmplacementOccupe, ReferenceDejaPrise, ReferenceInvalide


def _code_taken(code: str, other: Emplacement) -> ReferenceDejaPrise:
    return ReferenceDejaPrise(
        f"The code '{code}' is already used by the location '{other.nom}' ({other.id}).",
        errors=[{"field": "code", "message": "already used by another location"}],
    )


async def _flush_unique(session: AsyncSession, code: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_emplacement_code_lower" in str(exc.orig):
            raise ReferenceDejaPrise(
                f"The code '{code}' is already used by another location.",
                errors=[{"field": "code", "message": "already used by another location"}],
            ) from exc
        raise


def _check_van(type_: str, technicien_id: int | None) -> None:
    if technicien_id is not None and type_ != TypeEmplacement.vehicule:
        raise ReferenceInvalide(
            "Only a van (type 'vehicule') belongs to a technician; leave technicien_id out for a store.",
            errors=[{"field": "technicien_id", "message": "only for type 'vehicule'"}],
        )


async def create_emplacement(session: AsyncSession, *, data: EmplacementCreate) -> Emplacement:
    _check_van(data.type.value, data.technicien_id)
    if other := await repo.emplacement_with_code(session, data.code):
        raise _code_taken(data.code, other)
    moment = now()
    emplacement = Emplacement(
        **data.model_dump(mode="json"), is_active=True, version=1, date_creation=moment, date_modification=moment
    )
    session.add(emplacement)
    await _flush_unique(session, data.code)
    return emplacement


async def get_emplacement(session: AsyncSession, emplacement_id: int, *, lock: bool = False) -> Emplacement:
    emplacement = await repo.emplacement_by_id(session, emplacement_id, lock=lock)
    if emplacement is None:
        raise EmplacementIntrouvable(f"No storage location with id {emplacement_id}.")
    return emplacement


async def update_emplacement(session: AsyncSession, *, emplacement_id: int, data: EmplacementUpdate) -> Emplacement:
    emplacement = await get_emplacement(session, emplacement_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    _check_van(emplacement.type, changes.get("technicien_id", emplacement.technicien_id))
    code = changes.get("code")
    if code is not None and (other := await repo.emplacement_with_code(session, code, except_id=emplacement.id)):
        raise _code_taken(code, other)
    if changes.get("is_active") is False and emplacement.is_active:
        await _ensure_empty(session, emplacement)
    changed = [name for name, value in changes.items() if getattr(emplacement, name) != value]
    if not changed:
        return emplacement
    for name in changed:
        setattr(emplacement, name, changes[name])
    emplacement.version += 1
    emplacement.date_modification = now()
    await _flush_unique(session, emplacement.code)
    return emplacement


async def _ensure_empty(session: AsyncSession, emplacement: Emplacement) -> None:
    if await repo.emplacement_holds_stock(session, emplacement.id):
        raise EmplacementOccupe(
            f"The location {emplacement.code} still holds stock: transfer it elsewhere before closing the location."
        )


async def deactivate_emplacement(session: AsyncSession, *, emplacement_id: int) -> None:
    await update_emplacement(session, emplacement_id=emplacement_id, data=EmplacementUpdate(is_active=False))
