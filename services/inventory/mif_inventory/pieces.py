"""The parts catalogue: create, read, edit, delete (hidden, its movements stay)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_common.events import add_event
from mif_inventory import repository as repo
from mif_inventory.events import PieceCreated, PieceDeleted, PieceEvent, PieceUpdated
from mif_inventory.models import Piece
from mif_inventory.schemas import PieceCreate, PieceUpdate
from mif_inventory.service import PieceIntrouvable, ReferenceDejaPrise, StockInsuffisant, fmt
from mif_inventory.stock import watch_minimum


def _event(event_cls: type[PieceEvent], piece: Piece, **extra: Any) -> PieceEvent:
    return event_cls(
        piece_id=piece.id,
        reference=piece.reference,
        nom=piece.nom,
        categorie=piece.categorie,
        unite=piece.unite,
        prix_unitaire=piece.prix_unitaire,
        stock_minimum=float(piece.stock_minimum),
        stock_maximum=float(piece.stock_maximum) if piece.stock_maximum is not None else None,
        version=piece.version,
        updated_at=piece.date_modification,
        **extra,
    )


def _reference_taken(reference: str, other: Piece) -> ReferenceDejaPrise:
    return ReferenceDejaPrise(
        f"The reference '{reference}' is already used by '{other.nom}' (part {other.id}).",
        errors=[{"field": "reference", "message": "already used by another part"}],
    )


async def _flush_unique(session: AsyncSession, reference: str) -> None:
    """Flush, turning a lost race on the reference's unique index into the pre-check's answer."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_piece_reference_lower" in str(exc.orig):
            raise ReferenceDejaPrise(
                f"The reference '{reference}' is already used by another part.",
                errors=[{"field": "reference", "message": "already used by another part"}],
            ) from exc
        raise


def _lower(types: list[str]) -> list[str]:
    # Matched against assets' equipment types case-insensitively; kept once each, in the given order.
    return list(dict.fromkeys(t.lower() for t in types))


async def create_piece(session: AsyncSession, *, data: PieceCreate) -> Piece:
    if other := await repo.piece_with_reference(session, data.reference):
        raise _reference_taken(data.reference, other)
    values = data.model_dump()
    values["types_equipement"] = _lower(data.types_equipement)
    values["equipement_ids"] = list(dict.fromkeys(data.equipement_ids))
    moment = now()
    # A new part holds nothing: below a minimum from the start, it is listed in `a-commander` but not
    # announced (no stock has fallen); the first alert comes when received stock falls back to it.
    piece = Piece(**values, en_alerte=data.stock_minimum > 0, version=1, date_creation=moment, date_modification=moment)
    session.add(piece)
    await _flush_unique(session, data.reference)
    await add_event(session, _event(PieceCreated, piece), subject=piece.id)
    return piece


async def get_piece(session: AsyncSession, piece_id: int, *, lock: bool = False) -> Piece:
    piece = await repo.piece_by_id(session, piece_id, lock=lock)
    if piece is None:
        raise PieceIntrouvable(f"No part with id {piece_id} in the catalogue.")
    return piece


async def update_piece(session: AsyncSession, *, piece_id: int, data: PieceUpdate) -> Piece:
    piece = await get_piece(session, piece_id, lock=True)
    changes = data.model_dump(exclude_unset=True)
    if "types_equipement" in changes:
        changes["types_equipement"] = _lower(changes["types_equipement"])
    if "equipement_ids" in changes:
        changes["equipement_ids"] = list(dict.fromkeys(changes["equipement_ids"]))
    reference = changes.get("reference")
    if reference is not None and (other := await repo.piece_with_reference(session, reference, except_id=piece.id)):
        raise _reference_taken(reference, other)
    changed = [name for name, value in changes.items() if getattr(piece, name) != value]
    minimum = changes.get("stock_minimum", piece.stock_minimum)
    maximum = changes.get("stock_maximum", piece.stock_maximum)
    if maximum is not None and maximum < minimum:
        raise StockInsuffisant(
            f"stock_maximum ({fmt(maximum)}) must be greater than or equal to stock_minimum ({fmt(minimum)}).",
            errors=[{"field": "stock_maximum", "message": "below stock_minimum"}],
        )
    if not changed:
        return piece
    for name in changed:
        setattr(piece, name, changes[name])
    piece.version += 1
    piece.date_modification = now()
    await _flush_unique(session, piece.reference)
    await add_event(session, _event(PieceUpdated, piece, changed=changed), subject=piece.id)
    if "stock_minimum" in changed:
        await watch_minimum(session, piece)
    return piece


async def delete_piece(session: AsyncSession, *, piece_id: int) -> None:
    """Hide the part from the catalogue; refused while some is on hand or reserved (move it out first)."""
    piece = await get_piece(session, piece_id, lock=True)
    if (disponible := await repo.on_hand_total(session, piece.id)) > 0:
        raise StockInsuffisant(
            f"{piece.reference} still has {fmt(disponible)} {piece.unite} on hand: record their sortie or an "
            "ajustement to 0 before deleting the part.",
        )
    moment = now()
    piece.supprime_le = moment
    piece.version += 1
    piece.date_modification = moment
    await session.flush()
    await add_event(session, _event(PieceDeleted, piece), subject=piece.id)
