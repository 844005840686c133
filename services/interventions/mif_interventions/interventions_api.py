"""HTTP routes of interventions themselves: list and search, create, read, edit. Parse, call the
concept module, shape the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from enum import StrEnum
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from mif_common.auth import CurrentPrincipal, Principal
from mif_common.datetimes import DateTimeIn, now
from mif_common.db import ReadSession, Session
from mif_common.errors import Unprocessable
from mif_common.listing import ReadConnections
from mif_common.pagination import PageParams, Sortable, json_page, order_by
from mif_common.params import MAX_ID, EntityId
from mif_interventions import creation, editing, service
from mif_interventions import repository as repo
from mif_interventions.api import (
    AssetsDep,
    AuteurDep,
    Createur,
    Editeur,
    IdempotencyKey,
    IfMatch,
    Page,
    _answer,
    _json,
    _present,
)
from mif_interventions.models import PRIORITE_ALIASES, Intervention, Priorite, Statut, TypeIntervention
from mif_interventions.repository import Filtres
from mif_interventions.schemas import InterventionCreate, InterventionOut, InterventionUpdate

interventions_router = APIRouter(prefix="/api/v1/interventions", tags=["interventions"])
filters_router = APIRouter(prefix="/api/v1/filters", tags=["interventions"])


# --- list and search ------------------------------------------------------------------------------

# `priorite` sorts by severity (urgente first when ascending), not alphabetically.
_PRIORITE_RANK = sa.case({p.value: rank for rank, p in enumerate(Priorite)}, value=Intervention.priorite)
_SORT: dict[str, Sortable] = {
    "id": Intervention.id,
    "titre": sa.func.lower(Intervention.titre),
    "statut": Intervention.statut,
    "priorite": _PRIORITE_RANK,
    "type": Intervention.type,
    "urgence": Intervention.urgence,
    "date_creation": Intervention.date_creation,
    "date_modification": Intervention.date_modification,
    "date_limite": Intervention.date_limite,
    "date_affectation": Intervention.date_affectation,
    "date_debut_travaux": Intervention.date_debut_travaux,
    "date_cloture": Intervention.date_cloture,
    "technicien_id": Intervention.technicien_id,
    "equipement_id": Intervention.equipement_id,
    "client_id": Intervention.client_id,
}


def _values(
    raw: Sequence[str] | None, enum: type[StrEnum], field: str, aliases: Mapping[str, StrEnum] | None = None
) -> list[str]:
    """Repeated and/or comma-separated enum values (`statut=ouverte,affectee&statut=en_cours`)."""
    allowed = [e.value for e in enum]
    out: list[str] = []
    for chunk in raw or ():
        for part in chunk.split(","):
            value = part.strip()
            if not value:
                continue
            if aliases and value.lower() in aliases:
                value = aliases[value.lower()].value
            if value not in allowed:
                raise Unprocessable(
                    f"Unknown {field} '{value[:40]}'. Allowed: {', '.join(allowed)}.",
                    errors=[{"field": field, "message": f"must be one of {', '.join(allowed)}"}],
                )
            out.append(value)
    return out


_Ref = Annotated[int | None, Query(gt=0, le=MAX_ID)]
_Many = Annotated[list[str] | None, Query(max_length=200, description="Repeat or comma-separate for several.")]


async def filtres(  # async: FastAPI runs a plain `def` dependency in a worker thread
    statut: _Many = None,
    priorite: _Many = None,
    type_: Annotated[list[str] | None, Query(alias="type", max_length=200, description="Repeat for several.")] = None,
    urgence: bool | None = None,
    technicien_id: _Ref = None,
    equipement_id: _Ref = None,
    client_id: _Ref = None,
    planning_id: _Ref = None,
    en_retard: Annotated[bool | None, Query(description="Past date_limite and still open.")] = None,
    date_creation_min: DateTimeIn | None = None,
    date_creation_max: DateTimeIn | None = None,
    date_limite_min: DateTimeIn | None = None,
    date_limite_max: DateTimeIn | None = None,
) -> Filtres:
    """The list filters (DOMAIN.md §8); `q` comes with the paging parameters."""
    return Filtres(
        statut=_values(statut, Statut, "statut"),
        priorite=_values(priorite, Priorite, "priorite", PRIORITE_ALIASES),
        type=_values(type_, TypeIntervention, "type"),
        urgence=urgence,
        technicien_id=technicien_id,
        equipement_id=equipement_id,
        client_id=client_id,
        planning_id=planning_id,
        en_retard=en_retard,
        date_creation_min=date_creation_min,
        date_creation_max=date_creation_max,
        date_limite_min=date_limite_min,
        date_limite_max=date_limite_max,
    )


FiltresDep = Annotated[Filtres, Depends(filtres)]

_LIST_DESCRIPTION = (
    "A bare JSON array with `X-Total-Count` and `Link` headers. Filters combine with AND; `statut`, "
    "`priorite` and `type` take several values. `q` is a French full-text search on the title and the "
    "description (every word, as a prefix). `sort`: "
    + ", ".join(sorted(_SORT))
    + " (`-` for descending; default: newest first). A technician sees the interventions assigned to "
    "them, a client user its organisation's."
)


async def _list(
    request: Request, connection: AsyncConnection, principal: Principal, params: PageParams, criteria: Filtres
) -> Response:
    scope = await service.scope_of(connection, principal)
    at = now()
    rows, total = await repo.page_and_total(
        connection,
        replace(criteria, q=params.q, now=at),
        scope,
        sort=params.sort,
        order=lambda: order_by(params.sort, _SORT, default=[Intervention.id.desc()]),
        limit=params.limit,
        offset=params.offset,
    )
    return json_page(request, _json([_present(r, at) for r in rows]), total=total, params=params)


@interventions_router.get(
    "", response_model=list[InterventionOut], summary="List and search interventions", description=_LIST_DESCRIPTION
)
async def list_interventions(
    request: Request, connections: ReadConnections, principal: CurrentPrincipal, params: Page, criteria: FiltresDep
) -> Response:
    async with connections() as connection:
        return await _list(request, connection, principal, params, criteria)


@filters_router.get(
    "/interventions",
    response_model=list[InterventionOut],
    summary="Filter interventions (same as GET /interventions, kept for existing clients)",
    description=_LIST_DESCRIPTION,
)
async def filter_interventions(
    request: Request, connections: ReadConnections, principal: CurrentPrincipal, params: Page, criteria: FiltresDep
) -> Response:
    async with connections() as connection:
        return await _list(request, connection, principal, params, criteria)


# --- one intervention ---------------------------------------------------------------------------------


@interventions_router.post(
    "",
    response_model=InterventionOut,
    status_code=201,
    summary="Create an intervention (responsable; a client user on its own equipment)",
    responses={
        422: {"description": "Unknown equipment or technician, inconsistent fields, reused Idempotency-Key"},
        503: {"description": "The equipment is not in the local replica and assets did not answer"},
    },
)
async def create_intervention(
    body: InterventionCreate,
    request: Request,
    session: Session,
    _: Createur,
    auteur: AuteurDep,
    assets: AssetsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    intervention, replayed = await creation.create_intervention(
        session,
        data=body,
        auteur=auteur,
        settings=request.app.state.settings,
        assets=assets,
        idempotency_key=idempotency_key,
    )
    headers = {"Location": f"{interventions_router.prefix}/{intervention.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return await _answer(session, intervention.id, status_code=201, headers=headers)


@interventions_router.get(
    "/{intervention_id}", response_model=InterventionOut, summary="One intervention (with its ETag)"
)
async def get_intervention(intervention_id: EntityId, session: ReadSession, principal: CurrentPrincipal) -> Response:
    intervention = await service.get_intervention(session, intervention_id=intervention_id, principal=principal)
    return await _answer(session, intervention.id)


@interventions_router.patch(
    "/{intervention_id}",
    response_model=InterventionOut,
    summary="Edit fields while not closed (responsable; the assigned technician: report fields); honours If-Match",
)
async def update_intervention(
    intervention_id: EntityId,
    body: InterventionUpdate,
    request: Request,
    session: Session,
    _: Editeur,
    auteur: AuteurDep,
    assets: AssetsDep,
    if_match: IfMatch = None,
) -> Response:
    intervention = await editing.update_intervention(
        session,
        intervention_id=intervention_id,
        data=body,
        auteur=auteur,
        if_match=if_match,
        settings=request.app.state.settings,
        assets=assets,
    )
    return await _answer(session, intervention.id)
