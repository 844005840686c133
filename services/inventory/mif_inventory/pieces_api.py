"""HTTP routes of the parts catalogue (`/api/v1/pieces`): parse, call the rules, shape the answer."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response

from mif_common.auth import Manager, Principal, Role, require_roles
from mif_common.db import Session
from mif_common.json_bodies import dump_rows
from mif_common.listing import ReadConnections
from mif_common.pagination import PageParams, Sortable, json_page, page_params
from mif_common.params import MAX_ID, EntityId
from mif_inventory import pieces
from mif_inventory import repository as repo
from mif_inventory.models import Piece, Stock, Unite
from mif_inventory.owners import AssetsEquipements
from mif_inventory.schemas import AReorder, PieceCreate, PieceOut, PieceUpdate, StockOut
from mif_inventory.service import ReferenceInvalide

pieces_router = APIRouter(prefix="/api/v1/pieces", tags=["pieces"])

# Managers and technicians read the catalogue and the stock; client users do not (DOMAIN.md §1).
Reader = Annotated[Principal, Depends(require_roles(Role.responsable, Role.technicien))]
Page = Annotated[PageParams, Depends(page_params)]
Assets = Annotated[AssetsEquipements, Depends(AssetsEquipements.for_request)]

_PIECE_SORT: dict[str, Sortable] = {
    "id": Piece.id,
    "reference": sa.func.lower(Piece.reference),
    "nom": sa.func.lower(Piece.nom),
    "categorie": sa.func.lower(Piece.categorie),
    "fabricant": sa.func.lower(Piece.fabricant),
    "prix_unitaire": Piece.prix_unitaire,
    "date_creation": Piece.date_creation,
    "date_modification": Piece.date_modification,
}
_PIECES = repo.pieces_list(_PIECE_SORT)


@pieces_router.get("", response_model=list[PieceOut], summary="List the parts catalogue (managers, technicians)")
async def list_pieces(
    request: Request,
    connections: ReadConnections,
    session: Session,
    _: Reader,
    params: Page,
    assets: Assets,
    categorie: Annotated[str | None, Query(max_length=100)] = None,
    fabricant: Annotated[str | None, Query(max_length=100)] = None,
    unite: Unite | None = None,
    en_alerte: Annotated[bool | None, Query(description="Parts at or below their minimum (true) or not.")] = None,
    equipement_id: Annotated[
        int | None,
        Query(gt=0, le=MAX_ID, description="Parts that fit this equipment: named by its id or by its type."),
    ] = None,
) -> Response:
    if equipement_id is not None and await assets.known(session, equipement_id) is None:
        raise ReferenceInvalide(
            f"No equipment {equipement_id} that you may see.",
            errors=[{"field": "equipement_id", "message": "unknown equipment"}],
        )
    terms = repo.pieces_terms(
        categorie=categorie,
        fabricant=fabricant,
        unite=unite.value if unite is not None else None,
        en_alerte=en_alerte,
        compatible=equipement_id,
        q=params.q,
    )
    async with connections() as connection:
        rows, total = await _PIECES.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


@pieces_router.post("", response_model=PieceOut, status_code=201, summary="Add a part to the catalogue")
async def create_piece(body: PieceCreate, session: Session, response: Response, _: Manager) -> Piece:
    piece = await pieces.create_piece(session, data=body)
    response.headers["Location"] = f"{pieces_router.prefix}/{piece.id}"
    return piece


_REORDER_SORT: dict[str, Sortable] = {
    "reference": sa.func.lower(Piece.reference),
    "nom": sa.func.lower(Piece.nom),
    "fabricant": sa.func.lower(Piece.fabricant),
}
_REORDER = repo.reorder_list(_REORDER_SORT)


@pieces_router.get(
    "/a-commander",
    response_model=list[AReorder],
    summary="Parts to reorder: available stock at or below the minimum, with the quantity back to the maximum",
)
async def a_commander(request: Request, connections: ReadConnections, _: Manager, params: Page) -> Response:
    async with connections() as connection:
        rows, total = await _REORDER.page_and_total(
            connection, terms={"to_reorder": None}, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


@pieces_router.get("/{piece_id}", response_model=PieceOut, summary="One part")
async def get_piece(piece_id: EntityId, session: Session, _: Reader) -> Piece:
    return await pieces.get_piece(session, piece_id)


@pieces_router.put("/{piece_id}", response_model=PieceOut, summary="Edit a part (partial)")
async def update_piece(piece_id: EntityId, body: PieceUpdate, session: Session, _: Manager) -> Piece:
    return await pieces.update_piece(session, piece_id=piece_id, data=body)


@pieces_router.delete(
    "/{piece_id}", status_code=204, summary="Remove a part from the catalogue (its movements stay; none on hand)"
)
async def delete_piece(piece_id: EntityId, session: Session, _: Manager) -> Response:
    await pieces.delete_piece(session, piece_id=piece_id)
    return Response(status_code=204)


_STOCK_SORT: dict[str, Sortable] = {"emplacement_id": Stock.emplacement_id, "quantite": Stock.quantite}
_STOCK = repo.stock_list(_STOCK_SORT)


@pieces_router.get("/{piece_id}/stock", response_model=list[StockOut], summary="A part's stock at each location")
async def stock_of_piece(
    piece_id: EntityId, request: Request, session: Session, connections: ReadConnections, _: Reader, params: Page
) -> Response:
    await pieces.get_piece(session, piece_id)
    async with connections() as connection:
        rows, total = await _STOCK.page_and_total(
            connection,
            terms={"live": None, "piece_id": piece_id},
            sort=params.sort,
            limit=params.limit,
            offset=params.offset,
        )
    return json_page(request, dump_rows(rows), total=total, params=params)
