"""Stock: the movements of a location's on-hand quantity and the low-stock alert.

Every change of a part's stock locks the part's row first (then its stock rows by location, then an
intervention's line): changes of one part are serialised, so no update is lost, the quantities
before/after of the ledger follow each other, and the alert sees every change in order (one alert per
crossing of the minimum, not one per movement below it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.events import add_event
from mif_inventory import repository as repo
from mif_inventory.events import StockLow, StockMoved
from mif_inventory.models import Emplacement, Mouvement, Piece, Stock, TypeMouvement
from mif_inventory.schemas import MouvementCreate
from mif_inventory.service import ReferenceInvalide, StockInsuffisant, fmt


@dataclass(frozen=True, slots=True)
class Moved:
    mouvement: Mouvement
    disponible: Decimal  # the part's available total over every location, after the movement


async def piece_for_movement(session: AsyncSession, piece_id: int) -> Piece:
    """The part named by a request's body, locked for a change of its stock; 422 when there is none."""
    piece = await repo.piece_by_id(session, piece_id, lock=True)
    if piece is None:
        raise ReferenceInvalide(
            f"No part with id {piece_id} in the catalogue.", errors=[{"field": "piece_id", "message": "unknown part"}]
        )
    return piece


async def emplacement_for_movement(session: AsyncSession, emplacement_id: int, *, field: str) -> Emplacement:
    emplacement = await repo.emplacement_by_id(session, emplacement_id, share=True)
    if emplacement is None or not emplacement.is_active:
        raise ReferenceInvalide(
            f"No active storage location with id {emplacement_id}.",
            errors=[{"field": field, "message": "unknown or inactive location"}],
        )
    return emplacement


def refuse_short(
    piece: Piece, emplacement: Emplacement, stock: Stock, *, asked: Decimal, own: Decimal = Decimal(0)
) -> None:
    """409 naming the quantities when `asked` is more than what the location has available (plus `own`:
    what is reserved for the caller's intervention there)."""
    disponible = stock.quantite - stock.reservee + own
    if asked <= disponible:
        return
    reserved_by_others = stock.reservee - own
    detail = f"on hand {fmt(stock.quantite)}"
    if reserved_by_others:
        detail += f", {fmt(reserved_by_others)} reserved for other interventions"
    raise StockInsuffisant(
        f"Not enough {piece.reference} ({piece.nom}) at {emplacement.code}: {fmt(asked)} {piece.unite} asked, "
        f"{fmt(max(disponible, Decimal(0)))} available ({detail}).",
        errors=[{"field": "quantite", "message": f"at most {fmt(max(disponible, Decimal(0)))}"}],
    )


async def record(
    session: AsyncSession,
    *,
    piece: Piece,
    stock: Stock,
    type_: TypeMouvement,
    delta: Decimal,
    user_id: int | None,
    motif: str | None,
    intervention_id: int | None = None,
    emplacement_lie_id: int | None = None,
) -> Moved:
    """One movement of a locked stock row, with its ledger row and its event. The caller checked that
    the row stays within its bounds (the table's checks refuse it otherwise). Answers the ledger row and
    the part's available total after it (for `watch_minimum`)."""
    moment = now()
    avant = stock.quantite
    stock.quantite = avant + delta
    stock.date_modification = moment
    mouvement = Mouvement(
        piece_id=piece.id,
        emplacement_id=stock.emplacement_id,
        type=type_.value,
        quantite=delta,
        avant=avant,
        apres=stock.quantite,
        emplacement_lie_id=emplacement_lie_id,
        intervention_id=intervention_id,
        prix_unitaire=piece.prix_unitaire,
        user_id=user_id,
        motif=motif,
        date_mouvement=moment,
    )
    session.add(mouvement)
    await session.flush()
    disponible = await repo.available_total(session, piece.id)
    await add_event(
        session,
        StockMoved(
            mouvement_id=mouvement.id,
            piece_id=piece.id,
            emplacement_id=stock.emplacement_id,
            type=type_.value,
            quantite=float(delta),
            avant=float(avant),
            apres=float(stock.quantite),
            emplacement_lie_id=emplacement_lie_id,
            intervention_id=intervention_id,
            prix_unitaire=piece.prix_unitaire,
            user_id=user_id,
            motif=motif,
            disponible_total=float(disponible),
            occurred_at=moment,
        ),
        subject=piece.id,
    )
    return Moved(mouvement, disponible)


def a_commander(piece: Piece, disponible: Decimal) -> Decimal:
    cible = piece.stock_maximum if piece.stock_maximum is not None else piece.stock_minimum
    return max(cible - disponible, Decimal(0))


async def watch_minimum(session: AsyncSession, piece: Piece, *, disponible: Decimal | None = None) -> None:
    """After a change of the locked part's stock (or of its minimum): announce a crossing down to or below
    `stock_minimum` once; going back above re-arms it. A part with no minimum (0) is never announced.
    `disponible`: the part's available total when the caller knows it (the last movement's)."""
    if disponible is None:
        disponible = await repo.available_total(session, piece.id)
    below = piece.stock_minimum > 0 and disponible <= piece.stock_minimum
    if below == piece.en_alerte:
        return
    piece.en_alerte = below
    await session.flush()
    if below:
        await add_event(
            session,
            StockLow(
                piece_id=piece.id,
                reference=piece.reference,
                nom=piece.nom,
                unite=piece.unite,
                disponible=float(disponible),
                stock_minimum=float(piece.stock_minimum),
                stock_maximum=float(piece.stock_maximum) if piece.stock_maximum is not None else None,
                a_commander=float(a_commander(piece, disponible)),
                occurred_at=now(),
            ),
            subject=piece.id,
        )


async def move_stock(session: AsyncSession, *, data: MouvementCreate, principal: Principal) -> Sequence[Mouvement]:
    """A manager's movement: `entree`, `sortie`, `retour` of a quantity, `ajustement` to a counted
    quantity, `transfert` to another location. Empty when a count matches what the ledger holds."""
    piece = await piece_for_movement(session, data.piece_id)
    emplacement = await emplacement_for_movement(session, data.emplacement_id, field="emplacement_id")
    user_id, motif = principal.user_id, data.motif
    kind = data.type
    if kind is TypeMouvement.transfert:
        assert data.emplacement_destination_id is not None  # the body's validator
        destination = await emplacement_for_movement(
            session, data.emplacement_destination_id, field="emplacement_destination_id"
        )
        # Two rows of one part: locked in the order of their locations, as every writer does.
        first, second = sorted((emplacement.id, destination.id))
        rows = {first: await repo.locked_stock(session, piece.id, first)}
        rows[second] = await repo.locked_stock(session, piece.id, second)
        source = rows[emplacement.id]
        refuse_short(piece, emplacement, source, asked=data.quantite)
        moves = [
            await record(
                session,
                piece=piece,
                stock=source,
                type_=kind,
                delta=-data.quantite,
                user_id=user_id,
                motif=motif,
                emplacement_lie_id=destination.id,
            ),
            await record(
                session,
                piece=piece,
                stock=rows[destination.id],
                type_=kind,
                delta=data.quantite,
                user_id=user_id,
                motif=motif,
                emplacement_lie_id=emplacement.id,
            ),
        ]
    else:
        stock = await repo.locked_stock(session, piece.id, emplacement.id)
        if kind is TypeMouvement.ajustement:
            delta = data.quantite - stock.quantite
            if delta < 0 and data.quantite < stock.reservee:
                raise StockInsuffisant(
                    f"{emplacement.code} has {fmt(stock.reservee)} {piece.unite} of {piece.reference} reserved for "
                    f"interventions: a count of {fmt(data.quantite)} is below it; release those reservations first.",
                    errors=[{"field": "quantite", "message": f"at least {fmt(stock.reservee)}"}],
                )
        elif kind is TypeMouvement.sortie:
            refuse_short(piece, emplacement, stock, asked=data.quantite)
            delta = -data.quantite
        else:
            delta = data.quantite
        moves = []
        if delta != 0:
            moves.append(
                await record(session, piece=piece, stock=stock, type_=kind, delta=delta, user_id=user_id, motif=motif)
            )
    await watch_minimum(session, piece, disponible=moves[-1].disponible if moves else None)
    return [move.mouvement for move in moves]
