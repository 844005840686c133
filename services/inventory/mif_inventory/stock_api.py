"""HTTP routes of stock (`/api/v1/stock`): locations, stock levels, the movements ledger, and the parts
on an intervention."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import TypeAdapter

from mif_common.auth import CurrentPrincipal, Manager, Principal, Role, require_roles
from mif_common.datetimes import DateTimeIn
from mif_common.db import Session
from mif_common.intervention_scope import scope_of
from mif_common.json_bodies import dump_rows
from mif_common.listing import ReadConnections
from mif_common.pagination import PageParams, Sortable, json_page, page_params
from mif_common.params import MAX_ID, MAX_REPEATS, EntityId
from mif_inventory import emplacements, interventions_pieces, stock
from mif_inventory import repository as repo
from mif_inventory.idempotency import IdempotencyKey, once
from mif_inventory.models import Emplacement, Mouvement, Stock, TypeEmplacement, TypeMouvement
from mif_inventory.owners import InterventionsClient
from mif_inventory.schemas import (
    EmplacementCreate,
    EmplacementOut,
    EmplacementUpdate,
    MouvementCreate,
    MouvementOut,
    PiecesIntervention,
    PiecesInterventionOut,
    StockOut,
)
from mif_inventory.service import usable_intervention, visible_intervention

stock_router = APIRouter(prefix="/api/v1/stock", tags=["stock"])

Reader = Annotated[Principal, Depends(require_roles(Role.responsable, Role.technicien))]
Page = Annotated[PageParams, Depends(page_params)]
Interventions = Annotated[InterventionsClient, Depends(InterventionsClient.for_request)]
OptId = Annotated[int | None, Query(gt=0, le=MAX_ID)]

# --- stock levels -------------------------------------------------------------------------------

_STOCK_SORT: dict[str, Sortable] = {
    "piece_id": Stock.piece_id,
    "emplacement_id": Stock.emplacement_id,
    "quantite": Stock.quantite,
    "date_modification": Stock.date_modification,
}
_STOCK = repo.stock_list(_STOCK_SORT)


@stock_router.get("", response_model=list[StockOut], summary="Stock levels: one row per part and location")
async def list_stock(
    request: Request,
    connections: ReadConnections,
    _: Reader,
    params: Page,
    piece_id: OptId = None,
    emplacement_id: OptId = None,
    en_stock: Annotated[bool | None, Query(description="Only rows with some on hand (true) or none (false).")] = None,
) -> Response:
    terms: dict[str, object] = {"live": None}
    if piece_id is not None:
        terms["piece_id"] = piece_id
    if emplacement_id is not None:
        terms["emplacement_id"] = emplacement_id
    if en_stock is not None:
        terms["en_stock" if en_stock else "epuise"] = None
    async with connections() as connection:
        rows, total = await _STOCK.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


# --- locations ----------------------------------------------------------------------------------

_EMPLACEMENT_SORT: dict[str, Sortable] = {
    "id": Emplacement.id,
    "code": sa.func.lower(Emplacement.code),
    "nom": sa.func.lower(Emplacement.nom),
    "type": Emplacement.type,
}
_EMPLACEMENTS = repo.emplacements_list(_EMPLACEMENT_SORT)


@stock_router.get("/emplacements", response_model=list[EmplacementOut], summary="Storage locations")
async def list_emplacements(
    request: Request,
    connections: ReadConnections,
    _: Reader,
    params: Page,
    type: TypeEmplacement | None = None,
    is_active: bool | None = None,
    technicien_id: OptId = None,
) -> Response:
    values = {"type": type.value if type else None, "is_active": is_active, "technicien_id": technicien_id}
    terms = {name: value for name, value in values.items() if value is not None}
    async with connections() as connection:
        rows, total = await _EMPLACEMENTS.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


@stock_router.post("/emplacements", response_model=EmplacementOut, status_code=201, summary="Add a storage location")
async def create_emplacement(body: EmplacementCreate, session: Session, response: Response, _: Manager) -> Emplacement:
    emplacement = await emplacements.create_emplacement(session, data=body)
    response.headers["Location"] = f"{stock_router.prefix}/emplacements/{emplacement.id}"
    return emplacement


@stock_router.get("/emplacements/{emplacement_id}", response_model=EmplacementOut, summary="One storage location")
async def get_emplacement(emplacement_id: EntityId, session: Session, _: Reader) -> Emplacement:
    return await emplacements.get_emplacement(session, emplacement_id)


@stock_router.put(
    "/emplacements/{emplacement_id}", response_model=EmplacementOut, summary="Edit a storage location (partial)"
)
async def update_emplacement(
    emplacement_id: EntityId, body: EmplacementUpdate, session: Session, _: Manager
) -> Emplacement:
    return await emplacements.update_emplacement(session, emplacement_id=emplacement_id, data=body)


@stock_router.delete(
    "/emplacements/{emplacement_id}", status_code=204, summary="Close a storage location (it must hold no stock)"
)
async def deactivate_emplacement(emplacement_id: EntityId, session: Session, _: Manager) -> Response:
    await emplacements.deactivate_emplacement(session, emplacement_id=emplacement_id)
    return Response(status_code=204)


# --- movements ----------------------------------------------------------------------------------

_MOUVEMENT_SORT: dict[str, Sortable] = {"id": Mouvement.id, "date_mouvement": Mouvement.date_mouvement}
_MOUVEMENTS = repo.mouvements_list(_MOUVEMENT_SORT)
_MOUVEMENTS_OUT = TypeAdapter(list[MouvementOut])


@stock_router.get(
    "/mouvements", response_model=list[MouvementOut], summary="The movements ledger (append-only), oldest first"
)
async def list_mouvements(
    request: Request,
    connections: ReadConnections,
    _: Reader,
    params: Page,
    piece_id: OptId = None,
    emplacement_id: OptId = None,
    intervention_id: OptId = None,
    type: Annotated[list[TypeMouvement], Query(max_length=MAX_REPEATS)] = [],  # noqa: B006
    user_id: OptId = None,
    depuis: Annotated[DateTimeIn | None, Query(description="From this moment (included).")] = None,
    jusqu_a: Annotated[DateTimeIn | None, Query(description="Until this moment (excluded).")] = None,
) -> Response:
    values: dict[str, object | None] = {
        "piece_id": piece_id,
        "emplacement_id": emplacement_id,
        "intervention_id": intervention_id,
        "type": [t.value for t in type] or None,
        "user_id": user_id,
        "depuis": depuis,
        "jusqu_a": jusqu_a,
    }
    terms = {name: value for name, value in values.items() if value is not None}
    async with connections() as connection:
        rows, total = await _MOUVEMENTS.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


@stock_router.post(
    "/mouvements",
    response_model=list[MouvementOut],
    status_code=201,
    summary="Record a movement (entree, sortie, ajustement to a count, retour, transfert); retry-safe with "
    "Idempotency-Key",
)
async def create_mouvement(
    body: MouvementCreate, session: Session, principal: Manager, idempotency_key: IdempotencyKey = None
) -> Response:
    async def run() -> bytes:
        moved = await stock.move_stock(session, data=body, principal=principal)
        return _MOUVEMENTS_OUT.dump_json([MouvementOut.model_validate(m) for m in moved])

    return await once(
        session, principal=principal, key=idempotency_key, route="mouvements", body=body, status_code=201, run=run
    )


# --- parts on an intervention -------------------------------------------------------------------


@stock_router.get(
    "/interventions/{intervention_id}/pieces",
    response_model=PiecesInterventionOut,
    summary="The parts of an intervention (a client user: consumed parts and their costs only)",
)
async def pieces_of_intervention(
    intervention_id: EntityId, session: Session, principal: CurrentPrincipal, interventions: Interventions
) -> PiecesInterventionOut:
    scope = scope_of(principal)
    await visible_intervention(
        session, intervention_id=intervention_id, principal=principal, interventions=interventions
    )
    return await interventions_pieces.parts_of(session, intervention_id=intervention_id, scope=scope)


Action = Callable[..., Awaitable[None]]


async def _on_intervention(
    action: Action,
    name: str,
    *,
    intervention_id: int,
    body: PiecesIntervention,
    session: Session,
    principal: Principal,
    interventions: InterventionsClient,
    idempotency_key: str | None,
) -> Response:
    intervention = await usable_intervention(
        session, intervention_id=intervention_id, principal=principal, interventions=interventions
    )

    async def run() -> bytes:
        await action(session, intervention=intervention, data=body, principal=principal)
        view = await interventions_pieces.parts_of(session, intervention_id=intervention_id, scope=scope_of(principal))
        return view.model_dump_json().encode()

    return await once(
        session,
        principal=principal,
        key=idempotency_key,
        route=f"interventions/{intervention_id}/{name}",
        body=body,
        status_code=200,
        run=run,
    )


Mover = Annotated[Principal, Depends(require_roles(Role.responsable, Role.technicien))]


def _intervention_action(action: Action, path: str, *, name: str, summary: str) -> None:
    """`POST /interventions/{id}/<path>`: one of the four moves of parts on an intervention (same body,
    same rules of who, same answer: the intervention's parts)."""

    async def route(
        intervention_id: EntityId,
        body: PiecesIntervention,
        session: Session,
        principal: Mover,
        interventions: Interventions,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        return await _on_intervention(
            action,
            path,
            intervention_id=intervention_id,
            body=body,
            session=session,
            principal=principal,
            interventions=interventions,
            idempotency_key=idempotency_key,
        )

    stock_router.post(
        f"/interventions/{{intervention_id}}/{path}",
        response_model=PiecesInterventionOut,
        name=name,
        summary=summary + "; retry-safe with Idempotency-Key",
    )(route)


_intervention_action(
    interventions_pieces.reserve,
    "reservations",
    name="reserve",
    summary="Reserve parts for an intervention (affectee, en_cours, en_attente)",
)
_intervention_action(
    interventions_pieces.consume,
    "consommations",
    name="consume",
    summary="Consume parts on an intervention (a sortie; its reservation there first)",
)
_intervention_action(
    interventions_pieces.give_back,
    "retours",
    name="give_back",
    summary="Return unused consumed parts to stock (a retour; also after closure)",
)
_intervention_action(
    interventions_pieces.release,
    "liberations",
    name="release",
    summary="Release a reservation of an intervention",
)
