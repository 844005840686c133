"""Queries of the inventory service: parts, locations, stock rows (always locked in the same order:
the part, then its stock rows, then the intervention's line), movements, idempotency keys, replicas."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.listing import ListQuery, any_of, equals, like_pattern, lower_equals, model_columns, search
from mif_common.pagination import Sortable
from mif_common.unique import holder_of
from mif_inventory.models import (
    PIECE_SEARCH_SQL,
    Emplacement,
    EquipementRef,
    IdempotencyKey,
    InterventionCout,
    InterventionPiece,
    Mouvement,
    Piece,
    Stock,
)
from mif_inventory.schemas import EmplacementOut


def _number(column: Any, name: str) -> sa.ColumnElement[Any]:
    # Quantities are NUMERIC; the lists answer them as JSON numbers, as the models do.
    return sa.cast(column, sa.Float).label(name)


# --- parts --------------------------------------------------------------------------------------


async def piece_by_id(session: AsyncSession, piece_id: int, *, lock: bool = False) -> Piece | None:
    """A live part; `lock` takes the row lock every change of the part's stock takes first."""
    query = sa.select(Piece).where(Piece.id == piece_id, Piece.supprime_le.is_(None))
    if lock:
        query = query.with_for_update(key_share=True).execution_options(populate_existing=True)
    return await session.scalar(query)


async def piece_with_reference(session: AsyncSession, reference: str, *, except_id: int | None = None) -> Piece | None:
    return await holder_of(
        session, Piece, Piece.reference, reference, except_id=except_id, where=[Piece.supprime_le.is_(None)]
    )


def _compatible() -> sa.ColumnElement[bool]:
    """Parts fitting the equipment `:compatible`: named by id, or by the equipment's type (from the replica;
    types are kept lower-case on both sides)."""
    equipement_id = sa.bindparam("compatible", type_=sa.BigInteger())
    type_ = sa.select(sa.func.lower(EquipementRef.type)).where(EquipementRef.equipement_id == equipement_id)
    return sa.or_(
        equipement_id == sa.any_(Piece.equipement_ids),
        type_.scalar_subquery() == sa.any_(Piece.types_equipement),
    )


PIECE_COLUMNS = [
    Piece.id.label("id"),
    Piece.reference.label("reference"),
    Piece.nom.label("nom"),
    Piece.description.label("description"),
    Piece.categorie.label("categorie"),
    Piece.fabricant.label("fabricant"),
    Piece.reference_fabricant.label("reference_fabricant"),
    Piece.unite.label("unite"),
    Piece.prix_unitaire.label("prix_unitaire"),
    _number(Piece.stock_minimum, "stock_minimum"),
    _number(Piece.stock_maximum, "stock_maximum"),
    Piece.types_equipement.label("types_equipement"),
    Piece.equipement_ids.label("equipement_ids"),
    Piece.en_alerte.label("en_alerte"),
    Piece.version.label("version"),
    Piece.date_creation.label("date_creation"),
    Piece.date_modification.label("date_modification"),
]


def pieces_list(sort: Mapping[str, Sortable]) -> ListQuery:
    return ListQuery(
        columns=PIECE_COLUMNS,
        source=Piece,
        key=Piece.id,
        terms={
            "live": lambda: Piece.supprime_le.is_(None),
            "categorie": lambda: lower_equals(Piece.categorie, "categorie"),
            "fabricant": lambda: lower_equals(Piece.fabricant, "fabricant"),
            "unite": lambda: equals(Piece.unite, "unite"),
            "en_alerte": lambda: equals(Piece.en_alerte, "en_alerte"),
            "compatible": lambda: _compatible(),
            "q": lambda: search(PIECE_SEARCH_SQL),
        },
        sort=sort,
        default=[Piece.id],
    )


def pieces_terms(
    *,
    categorie: str | None,
    fabricant: str | None,
    unite: str | None,
    en_alerte: bool | None,
    compatible: int | None,
    q: str | None,
) -> dict[str, Any]:
    """The catalogue list's terms; `compatible` is an equipment id, for the parts that fit it."""
    terms: dict[str, Any] = {"live": None}
    if categorie is not None:
        terms["categorie"] = categorie.lower()
    if fabricant is not None:
        terms["fabricant"] = fabricant.lower()
    if unite is not None:
        terms["unite"] = unite
    if en_alerte is not None:
        terms["en_alerte"] = en_alerte
    if compatible is not None:
        terms["compatible"] = compatible
    if q is not None:
        terms["q"] = like_pattern(q)
    return terms


def reorder_list(sort: Mapping[str, Sortable]) -> ListQuery:
    """Parts whose available stock is at or below their minimum (a minimum above 0), with their totals
    and what brings them back to their maximum (their minimum when they have none)."""
    totals = (
        sa.select(
            Stock.piece_id,
            sa.func.sum(Stock.quantite).label("en_stock"),
            sa.func.sum(Stock.reservee).label("reserve"),
        )
        .group_by(Stock.piece_id)
        .subquery("totals")
    )
    en_stock = sa.func.coalesce(totals.c.en_stock, 0)
    reserve = sa.func.coalesce(totals.c.reserve, 0)
    disponible = en_stock - reserve
    a_commander = sa.func.greatest(sa.func.coalesce(Piece.stock_maximum, Piece.stock_minimum) - disponible, 0)
    return ListQuery(
        columns=[
            Piece.id.label("piece_id"),
            Piece.reference.label("reference"),
            Piece.nom.label("nom"),
            Piece.unite.label("unite"),
            Piece.fabricant.label("fabricant"),
            Piece.reference_fabricant.label("reference_fabricant"),
            Piece.prix_unitaire.label("prix_unitaire"),
            _number(Piece.stock_minimum, "stock_minimum"),
            _number(Piece.stock_maximum, "stock_maximum"),
            _number(en_stock, "en_stock"),
            _number(reserve, "reserve"),
            _number(disponible, "disponible"),
            _number(a_commander, "a_commander"),
            sa.cast(sa.func.round(a_commander * Piece.prix_unitaire), sa.BigInteger).label("cout_estime"),
        ],
        source=sa.outerjoin(Piece, totals, totals.c.piece_id == Piece.id),
        key=Piece.id,
        terms={
            "to_reorder": lambda: sa.and_(
                Piece.supprime_le.is_(None), Piece.stock_minimum > 0, disponible <= Piece.stock_minimum
            )
        },
        sort=sort,
        default=[Piece.id],
        search=(),
    )


# --- locations ----------------------------------------------------------------------------------


async def emplacement_by_id(
    session: AsyncSession, emplacement_id: int, *, lock: bool = False, share: bool = False
) -> Emplacement | None:
    """`share`: a movement's lock, so the location cannot be closed until the movement has committed."""
    query = sa.select(Emplacement).where(Emplacement.id == emplacement_id)
    if lock or share:
        query = query.with_for_update(read=share, key_share=share).execution_options(populate_existing=True)
    return await session.scalar(query)


async def emplacement_with_code(
    session: AsyncSession, code: str, *, except_id: int | None = None
) -> Emplacement | None:
    return await holder_of(session, Emplacement, Emplacement.code, code, except_id=except_id)


def emplacements_list(sort: Mapping[str, Sortable]) -> ListQuery:
    return ListQuery(
        columns=model_columns(EmplacementOut, Emplacement),
        source=Emplacement,
        key=Emplacement.id,
        terms={
            "type": lambda: equals(Emplacement.type, "type"),
            "is_active": lambda: equals(Emplacement.is_active, "is_active"),
            "technicien_id": lambda: equals(Emplacement.technicien_id, "technicien_id"),
        },
        sort=sort,
        default=[Emplacement.id],
        search=(),
    )


async def emplacement_holds_stock(session: AsyncSession, emplacement_id: int) -> bool:
    return bool(
        await session.scalar(sa.select(sa.exists().where(Stock.emplacement_id == emplacement_id, Stock.quantite > 0)))
    )


# --- stock --------------------------------------------------------------------------------------


async def locked_stock(session: AsyncSession, piece_id: int, emplacement_id: int) -> Stock:
    """The stock row of a part at a location, locked; created empty the first time."""
    query = (
        sa.select(Stock)
        .where(Stock.piece_id == piece_id, Stock.emplacement_id == emplacement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    # The row exists but for a part's first movement at a location: one round trip in the common case.
    stock = await session.scalar(query)
    if stock is None:
        await session.execute(
            pg_insert(Stock).values(piece_id=piece_id, emplacement_id=emplacement_id).on_conflict_do_nothing()
        )
        stock = await session.scalar(query)
    assert stock is not None  # inserted above when missing
    return stock


async def available_total(session: AsyncSession, piece_id: int) -> Decimal:
    """On hand − reserved over every location."""
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Stock.quantite - Stock.reservee), 0)).where(Stock.piece_id == piece_id)
    )
    return Decimal(total or 0)


async def on_hand_total(session: AsyncSession, piece_id: int) -> Decimal:
    """On hand over every location (reserved included)."""
    total = await session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Stock.quantite), 0)).where(Stock.piece_id == piece_id)
    )
    return Decimal(total or 0)


STOCK_SOURCE = sa.join(Stock, Piece, Piece.id == Stock.piece_id).join(
    Emplacement, Emplacement.id == Stock.emplacement_id
)


def stock_list(sort: Mapping[str, Sortable]) -> ListQuery:
    """Stock rows of live parts, one per part and location."""
    return ListQuery(
        columns=[
            Stock.piece_id.label("piece_id"),
            Piece.reference.label("reference"),
            Piece.nom.label("nom"),
            Piece.unite.label("unite"),
            Stock.emplacement_id.label("emplacement_id"),
            Emplacement.code.label("emplacement_code"),
            _number(Stock.quantite, "quantite"),
            _number(Stock.reservee, "reservee"),
            _number(Stock.quantite - Stock.reservee, "disponible"),
            Stock.date_modification.label("date_modification"),
        ],
        source=STOCK_SOURCE,
        key=Stock.piece_id,
        terms={
            "live": lambda: Piece.supprime_le.is_(None),
            "piece_id": lambda: equals(Stock.piece_id, "piece_id"),
            "emplacement_id": lambda: equals(Stock.emplacement_id, "emplacement_id"),
            "en_stock": lambda: Stock.quantite > 0,
            "epuise": lambda: Stock.quantite == 0,
        },
        sort=sort,
        default=[Stock.piece_id, Stock.emplacement_id],
        search=(),
    )


MOUVEMENT_COLUMNS = [
    Mouvement.id.label("id"),
    Mouvement.piece_id.label("piece_id"),
    Mouvement.emplacement_id.label("emplacement_id"),
    Mouvement.type.label("type"),
    _number(Mouvement.quantite, "quantite"),
    _number(Mouvement.avant, "avant"),
    _number(Mouvement.apres, "apres"),
    Mouvement.emplacement_lie_id.label("emplacement_lie_id"),
    Mouvement.intervention_id.label("intervention_id"),
    Mouvement.prix_unitaire.label("prix_unitaire"),
    Mouvement.user_id.label("user_id"),
    Mouvement.motif.label("motif"),
    Mouvement.date_mouvement.label("date_mouvement"),
]


def mouvements_list(sort: Mapping[str, Sortable]) -> ListQuery:
    """The ledger, filtered by part, location, intervention, type, author and period."""
    return ListQuery(
        columns=MOUVEMENT_COLUMNS,
        source=Mouvement,
        key=Mouvement.id,
        terms={
            "piece_id": lambda: equals(Mouvement.piece_id, "piece_id"),
            "emplacement_id": lambda: equals(Mouvement.emplacement_id, "emplacement_id"),
            "intervention_id": lambda: equals(Mouvement.intervention_id, "intervention_id"),
            "type": lambda: any_of(Mouvement.type, "type"),
            "user_id": lambda: equals(Mouvement.user_id, "user_id"),
            "depuis": lambda: Mouvement.date_mouvement >= sa.bindparam("depuis", type_=Mouvement.date_mouvement.type),
            "jusqu_a": lambda: Mouvement.date_mouvement < sa.bindparam("jusqu_a", type_=Mouvement.date_mouvement.type),
        },
        sort=sort,
        default=[Mouvement.id],
        search=(),
    )


# --- parts on interventions ---------------------------------------------------------------------


async def locked_line(
    session: AsyncSession, *, intervention_id: int, piece_id: int, emplacement_id: int
) -> InterventionPiece:
    """The intervention's line for a part from a location, locked (after the part and its stock row: the
    order every writer follows); created empty the first time."""
    query = (
        sa.select(InterventionPiece)
        .where(
            InterventionPiece.intervention_id == intervention_id,
            InterventionPiece.piece_id == piece_id,
            InterventionPiece.emplacement_id == emplacement_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    line = await session.scalar(query)
    if line is None:
        await session.execute(
            pg_insert(InterventionPiece)
            .values(intervention_id=intervention_id, piece_id=piece_id, emplacement_id=emplacement_id)
            .on_conflict_do_nothing()
        )
        line = await session.scalar(query)
    assert line is not None
    return line


async def lines_of(session: AsyncSession, intervention_id: int) -> Sequence[Any]:
    """The intervention's lines with their part (all of them, reserved or consumed)."""
    rows = await session.execute(
        sa.select(InterventionPiece, Piece.reference, Piece.nom, Piece.unite)
        .join(Piece, Piece.id == InterventionPiece.piece_id)
        .where(InterventionPiece.intervention_id == intervention_id)
        .order_by(InterventionPiece.piece_id, InterventionPiece.emplacement_id)
        .execution_options(populate_existing=True)
    )
    return rows.all()


async def reserved_lines(session: AsyncSession, intervention_id: int) -> Sequence[InterventionPiece]:
    rows = await session.scalars(
        sa.select(InterventionPiece)
        .where(InterventionPiece.intervention_id == intervention_id, InterventionPiece.reservee > 0)
        .order_by(InterventionPiece.piece_id, InterventionPiece.emplacement_id)
    )
    return rows.all()


async def bump_cost_version(session: AsyncSession, intervention_id: int) -> int:
    """The next version of the intervention's parts cost (1, 2, ...). Its row lock, taken after the part,
    stock and line locks, serialises the cost changes of one intervention, so the lines read after it
    include every earlier committed change."""
    insert = pg_insert(InterventionCout).values(intervention_id=intervention_id, cout_pieces=0, version=1)
    version = await session.scalar(
        insert.on_conflict_do_update(
            index_elements=[InterventionCout.intervention_id], set_={"version": InterventionCout.version + 1}
        ).returning(InterventionCout.version)
    )
    return int(version or 1)


async def set_cost(session: AsyncSession, *, intervention_id: int, cout_pieces: int) -> None:
    await session.execute(
        sa.update(InterventionCout)
        .where(InterventionCout.intervention_id == intervention_id)
        .values(cout_pieces=cout_pieces)
    )


# --- idempotency --------------------------------------------------------------------------------


async def claim_idempotency_key(session: AsyncSession, *, user_id: int, key: str, request_sha256: str) -> bool:
    """Record the key; False when it exists. A concurrent claim of the same key waits for this
    transaction (the primary key), then sees its outcome."""
    claimed = await session.scalar(
        pg_insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_sha256=request_sha256)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    return claimed is not None


async def idempotency_key(session: AsyncSession, *, user_id: int, key: str) -> IdempotencyKey | None:
    return await session.get(IdempotencyKey, (user_id, key), populate_existing=True)


async def set_idempotency_result(
    session: AsyncSession, *, user_id: int, key: str, status_code: int, reponse: Any
) -> None:
    await session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status_code=status_code, reponse=reponse)
    )


async def purge_idempotency_keys(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)
