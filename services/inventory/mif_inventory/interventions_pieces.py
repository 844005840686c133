"""Parts on an intervention: reserve, consume, return, release; the intervention's parts cost.

- Reserve while the intervention is `affectee`, `en_cours` or `en_attente`: the location's available
  stock shrinks, its on-hand stock does not.
- Consume (a `sortie` linked to the intervention) in the same statuts: taken from the intervention's
  reservation at that location first, then from what is available there. Its cost is the quantity × the
  part's unit price at that moment.
- Return unused consumed parts (a `retour`), also after closure: the cost goes down by the returned share
  of the line's cost (the line's average price, so a return never credits more than was charged).
- Release a reservation; closing, cancelling or archiving the intervention releases what is left
  (`replicas.intervention_changed`).

Each consumption or return publishes the intervention's new parts cost
(`inventory.intervention.parts_costed.v1`, versioned); interventions shows it as `cout_pieces`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.events import add_event
from mif_common.intervention_scope import Scope
from mif_inventory import repository as repo
from mif_inventory.events import InterventionPartsCosted, LigneCout
from mif_inventory.models import STATUTS_PIECES_OUVERTES, Emplacement, InterventionPiece, Piece, Stock, TypeMouvement
from mif_inventory.schemas import LignePieceOut, PiecesIntervention, PiecesInterventionOut
from mif_inventory.service import (
    InterventionFermee,
    QuantiteInvalide,
    VisibleIntervention,
    cout_de,
    fmt,
)
from mif_inventory.stock import emplacement_for_movement, piece_for_movement, record, refuse_short, watch_minimum

_RETOUR_STATUTS = (*STATUTS_PIECES_OUVERTES, "cloturee")


def _ensure_open(intervention: VisibleIntervention, action: str, statuts: tuple[str, ...]) -> None:
    if intervention.statut not in statuts:
        raise InterventionFermee(
            f"Intervention {intervention.intervention_id} is '{intervention.statut}': parts are {action} only while "
            f"it is {', '.join(repr(s) for s in statuts)}."
        )


@dataclass(frozen=True, slots=True)
class _Locked:
    piece: Piece
    emplacement: Emplacement
    stock: Stock
    line: InterventionPiece


async def _locked(session: AsyncSession, intervention: VisibleIntervention, data: PiecesIntervention) -> _Locked:
    """The part, its stock row at the location and the intervention's line, locked in that order."""
    piece = await piece_for_movement(session, data.piece_id)
    emplacement = await emplacement_for_movement(session, data.emplacement_id, field="emplacement_id")
    stock = await repo.locked_stock(session, piece.id, emplacement.id)
    line = await repo.locked_line(
        session, intervention_id=intervention.intervention_id, piece_id=piece.id, emplacement_id=emplacement.id
    )
    return _Locked(piece, emplacement, stock, line)


async def reserve(
    session: AsyncSession, *, intervention: VisibleIntervention, data: PiecesIntervention, principal: Principal
) -> None:
    del principal  # reservations are not movements: no ledger row to sign
    _ensure_open(intervention, "reserved", STATUTS_PIECES_OUVERTES)
    held = await _locked(session, intervention, data)
    piece, emplacement, stock, line = held.piece, held.emplacement, held.stock, held.line
    refuse_short(piece, emplacement, stock, asked=data.quantite)
    stock.reservee += data.quantite
    line.reservee += data.quantite
    line.date_modification = now()
    await session.flush()
    await watch_minimum(session, piece)


async def release(
    session: AsyncSession, *, intervention: VisibleIntervention, data: PiecesIntervention, principal: Principal
) -> None:
    del principal
    _ensure_open(intervention, "released", STATUTS_PIECES_OUVERTES)
    held = await _locked(session, intervention, data)
    piece, stock, line = held.piece, held.stock, held.line
    if data.quantite > line.reservee:
        raise QuantiteInvalide(
            f"Only {fmt(line.reservee)} {piece.unite} of {piece.reference} are reserved for intervention "
            f"{intervention.intervention_id} there; {fmt(data.quantite)} cannot be released.",
            errors=[{"field": "quantite", "message": f"at most {fmt(line.reservee)}"}],
        )
    stock.reservee -= data.quantite
    line.reservee -= data.quantite
    line.date_modification = now()
    await session.flush()
    await watch_minimum(session, piece)


async def consume(
    session: AsyncSession, *, intervention: VisibleIntervention, data: PiecesIntervention, principal: Principal
) -> None:
    _ensure_open(intervention, "consumed", STATUTS_PIECES_OUVERTES)
    held = await _locked(session, intervention, data)
    piece, emplacement, stock, line = held.piece, held.emplacement, held.stock, held.line
    refuse_short(piece, emplacement, stock, asked=data.quantite, own=line.reservee)
    from_reservation = min(line.reservee, data.quantite)
    stock.reservee -= from_reservation
    line.reservee -= from_reservation
    moved = await record(
        session,
        piece=piece,
        stock=stock,
        type_=TypeMouvement.sortie,
        delta=-data.quantite,
        user_id=principal.user_id,
        motif=data.motif or f"Consommée sur l'intervention n°{intervention.intervention_id}",
        intervention_id=intervention.intervention_id,
    )
    line.consommee += data.quantite
    line.cout += cout_de(data.quantite, piece.prix_unitaire)
    line.date_modification = now()
    await session.flush()
    await watch_minimum(session, piece, disponible=moved.disponible)
    await publish_cost(session, intervention_id=intervention.intervention_id, actor_id=principal.user_id)


async def give_back(
    session: AsyncSession, *, intervention: VisibleIntervention, data: PiecesIntervention, principal: Principal
) -> None:
    _ensure_open(intervention, "returned", _RETOUR_STATUTS)
    held = await _locked(session, intervention, data)
    piece, stock, line = held.piece, held.stock, held.line
    if data.quantite > line.consommee:
        raise QuantiteInvalide(
            f"Only {fmt(line.consommee)} {piece.unite} of {piece.reference} were consumed on intervention "
            f"{intervention.intervention_id} from there; {fmt(data.quantite)} cannot be returned.",
            errors=[{"field": "quantite", "message": f"at most {fmt(line.consommee)}"}],
        )
    credit = (
        line.cout
        if data.quantite == line.consommee
        else int((Decimal(line.cout) * data.quantite / line.consommee).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    )
    moved = await record(
        session,
        piece=piece,
        stock=stock,
        type_=TypeMouvement.retour,
        delta=data.quantite,
        user_id=principal.user_id,
        motif=data.motif or f"Retour non utilisé de l'intervention n°{intervention.intervention_id}",
        intervention_id=intervention.intervention_id,
    )
    line.consommee -= data.quantite
    line.cout -= credit
    line.date_modification = now()
    await session.flush()
    await watch_minimum(session, piece, disponible=moved.disponible)
    await publish_cost(session, intervention_id=intervention.intervention_id, actor_id=principal.user_id)


async def publish_cost(session: AsyncSession, *, intervention_id: int, actor_id: int | None) -> None:
    """The intervention's parts cost, summed per part over its locations, as a new version."""
    version = await repo.bump_cost_version(session, intervention_id)
    totals: dict[int, LigneCout] = {}
    quantities: dict[int, Decimal] = defaultdict(Decimal)
    for line, reference, nom, unite in await repo.lines_of(session, intervention_id):
        if line.consommee == 0 and line.cout == 0:
            continue
        quantities[line.piece_id] += line.consommee
        known = totals.get(line.piece_id)
        cout = line.cout + (known.cout if known else 0)
        totals[line.piece_id] = LigneCout(
            piece_id=line.piece_id, reference=reference, nom=nom, unite=unite, quantite=0.0, cout=cout
        )
    lignes = [ligne.model_copy(update={"quantite": float(quantities[pid])}) for pid, ligne in totals.items()]
    cout_pieces = sum(ligne.cout for ligne in lignes)
    await repo.set_cost(session, intervention_id=intervention_id, cout_pieces=cout_pieces)
    await add_event(
        session,
        InterventionPartsCosted(
            intervention_id=intervention_id,
            cout_pieces=cout_pieces,
            lignes=lignes,
            version=version,
            actor_id=actor_id,
            occurred_at=now(),
        ),
        subject=intervention_id,
    )


async def release_all(session: AsyncSession, intervention_id: int) -> int:
    """What is still reserved for a finished intervention goes back to available stock. Returns how many
    lines were released."""
    released = 0
    for reserved in await repo.reserved_lines(session, intervention_id):
        piece = await repo.piece_by_id(session, reserved.piece_id, lock=True)
        stock = await repo.locked_stock(session, reserved.piece_id, reserved.emplacement_id)
        line = await repo.locked_line(
            session, intervention_id=intervention_id, piece_id=reserved.piece_id, emplacement_id=reserved.emplacement_id
        )
        if line.reservee == 0:
            continue
        stock.reservee -= line.reservee
        line.reservee = Decimal(0)
        line.date_modification = now()
        await session.flush()
        released += 1
        if piece is not None:
            await watch_minimum(session, piece)
    return released


async def parts_of(session: AsyncSession, *, intervention_id: int, scope: Scope) -> PiecesInterventionOut:
    """The intervention's lines; a client user's view keeps only what was consumed and its cost."""
    client_view = scope.client_id is not None
    lignes: list[LignePieceOut] = []
    for line, reference, nom, unite in await repo.lines_of(session, intervention_id):
        if client_view:
            if line.consommee == 0 and line.cout == 0:
                continue
            lignes.append(
                LignePieceOut(
                    piece_id=line.piece_id,
                    reference=reference,
                    nom=nom,
                    unite=unite,
                    consommee=float(line.consommee),
                    cout=line.cout,
                )
            )
        elif line.reservee or line.consommee or line.cout:
            lignes.append(
                LignePieceOut(
                    piece_id=line.piece_id,
                    reference=reference,
                    nom=nom,
                    unite=unite,
                    emplacement_id=line.emplacement_id,
                    reservee=float(line.reservee),
                    consommee=float(line.consommee),
                    cout=line.cout,
                )
            )
    return PiecesInterventionOut(
        intervention_id=intervention_id, lignes=lignes, cout_pieces=sum(ligne.cout for ligne in lignes)
    )
