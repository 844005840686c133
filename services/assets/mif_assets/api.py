"""HTTP routes of the assets service: parse, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response

from mif_assets import clients, equipements
from mif_assets import repository as repo
from mif_assets.models import (
    Client,
    Criticite,
    Equipement,
    EquipementStatutHistorique,
    NiveauService,
    StatutEquipement,
    TypeClient,
)
from mif_assets.schemas import (
    ClientCreate,
    ClientOut,
    ClientUpdate,
    EquipementCreate,
    EquipementOut,
    EquipementUpdate,
    StatutHistoriqueOut,
)
from mif_common.auth import CurrentPrincipal, Manager, Principal, Role, require_roles
from mif_common.db import Session
from mif_common.json_bodies import dump_rows
from mif_common.listing import ReadConnections
from mif_common.pagination import PageParams, Sortable, fetch_page, json_page, order_by, page_params, page_response
from mif_common.params import MAX_ID, MAX_REPEATS, EntityId

clients_router = APIRouter(prefix="/api/v1/clients", tags=["clients"])
equipements_router = APIRouter(prefix="/api/v1/equipements", tags=["equipements"])

# Managers read every organisation, a client user its own; technicians none.
ClientReader = Annotated[Principal, Depends(require_roles(Role.responsable, Role.client))]
Page = Annotated[PageParams, Depends(page_params)]


# --- clients ------------------------------------------------------------------------------------

_CLIENT_SORT: dict[str, Sortable] = {
    "id": Client.id,
    "nom_entreprise": sa.func.lower(Client.nom_entreprise),
    "type_client": Client.type_client,
    "niveau_service": Client.niveau_service,
    "ville": Client.ville,
    "contrat_fin": Client.contrat_fin,
    "date_creation": Client.date_creation,
    "date_modification": Client.date_modification,
}
_CLIENTS = repo.clients_list(_CLIENT_SORT)


@clients_router.get(
    "", response_model=list[ClientOut], summary="List client organisations (managers; a client user: its own)"
)
async def list_clients(
    request: Request,
    connections: ReadConnections,
    principal: ClientReader,
    params: Page,
    is_active: bool | None = None,
    type_client: TypeClient | None = None,
    niveau_service: NiveauService | None = None,
    ville: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    terms = repo.clients_terms(
        only_client_id=principal.organisation(),
        is_active=is_active,
        type_client=type_client.value if type_client is not None else None,
        niveau_service=niveau_service.value if niveau_service is not None else None,
        ville=ville,
        q=params.q,
    )
    async with connections() as connection:
        rows, total = await _CLIENTS.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


@clients_router.post("", response_model=ClientOut, status_code=201, summary="Create a client organisation")
async def create_client(body: ClientCreate, session: Session, response: Response, _: Manager) -> Client:
    client = await clients.create_client(session, data=body)
    response.headers["Location"] = f"{clients_router.prefix}/{client.id}"
    return client


@clients_router.get("/{client_id}", response_model=ClientOut, summary="One client organisation")
async def get_client(client_id: EntityId, session: Session, principal: ClientReader) -> Client:
    return await clients.get_client(session, client_id=client_id, principal=principal)


@clients_router.put("/{client_id}", response_model=ClientOut, summary="Edit a client organisation (partial)")
async def update_client(client_id: EntityId, body: ClientUpdate, session: Session, _: Manager) -> Client:
    return await clients.update_client(session, client_id=client_id, data=body)


@clients_router.delete("/{client_id}", status_code=204, summary="Deactivate a client organisation (soft delete)")
async def deactivate_client(client_id: EntityId, session: Session, _: Manager) -> Response:
    await clients.deactivate_client(session, client_id=client_id)
    return Response(status_code=204)


# --- equipements --------------------------------------------------------------------------------

# `criticite` sorts by severity (critique first when ascending), not alphabetically.
_CRITICITE_RANK = sa.case({c.value: rank for rank, c in enumerate(Criticite)}, value=Equipement.criticite)
_EQUIPEMENT_SORT: dict[str, Sortable] = {
    "id": Equipement.id,
    "nom": sa.func.lower(Equipement.nom),
    "type": sa.func.lower(Equipement.type),
    "localisation": sa.func.lower(Equipement.localisation),
    "statut": Equipement.statut,
    "criticite": _CRITICITE_RANK,
    "client_id": Equipement.client_id,
    "frequence_entretien": Equipement.frequence_entretien,
    "date_mise_en_service": Equipement.date_mise_en_service,
    "date_fin_garantie": Equipement.date_fin_garantie,
    "date_creation": Equipement.date_creation,
    "date_modification": Equipement.date_modification,
}
_EQUIPEMENTS = repo.equipements_list(_EQUIPEMENT_SORT)


@equipements_router.get(
    "", response_model=list[EquipementOut], summary="List equipment (a client user: its organisation's)"
)
async def list_equipements(
    request: Request,
    connections: ReadConnections,
    principal: CurrentPrincipal,
    params: Page,
    statut: Annotated[
        list[StatutEquipement] | None, Query(max_length=MAX_REPEATS, description="Repeat for several.")
    ] = None,
    criticite: Annotated[
        list[Criticite] | None, Query(max_length=MAX_REPEATS, description="Repeat for several.")
    ] = None,
    client_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    type_: Annotated[str | None, Query(alias="type", max_length=100, description="Exact, case-insensitive.")] = None,
    localisation: Annotated[str | None, Query(max_length=200, description="Exact, case-insensitive.")] = None,
) -> Response:
    terms = repo.equipements_terms(
        only_client_id=principal.organisation(),
        statut=[s.value for s in statut or ()],
        criticite=[c.value for c in criticite or ()],
        client_id=client_id,
        type_=type_,
        localisation=localisation,
        q=params.q,
    )
    async with connections() as connection:
        rows, total = await _EQUIPEMENTS.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


@equipements_router.post("", response_model=EquipementOut, status_code=201, summary="Create an equipment")
async def create_equipement(body: EquipementCreate, session: Session, response: Response, actor: Manager) -> Equipement:
    equipement = await equipements.create_equipement(session, data=body, actor=actor)
    response.headers["Location"] = f"{equipements_router.prefix}/{equipement.id}"
    return equipement


@equipements_router.get("/{equipement_id}", response_model=EquipementOut, summary="One equipment")
async def get_equipement(equipement_id: EntityId, session: Session, principal: CurrentPrincipal) -> Equipement:
    return await equipements.get_equipement(session, equipement_id=equipement_id, principal=principal)


@equipements_router.put(
    "/{equipement_id}", response_model=EquipementOut, summary="Edit an equipment (partial; statut with a motif)"
)
async def update_equipement(
    equipement_id: EntityId, body: EquipementUpdate, session: Session, actor: Manager
) -> Equipement:
    return await equipements.update_equipement(session, equipement_id=equipement_id, data=body, actor=actor)


@equipements_router.delete(
    "/{equipement_id}",
    status_code=204,
    summary="Delete an equipment no intervention references (409 otherwise: set statut 'retire')",
)
async def delete_equipement(equipement_id: EntityId, session: Session, _: Manager) -> Response:
    await equipements.delete_equipement(session, equipement_id=equipement_id)
    return Response(status_code=204)


_HISTORIQUE_SORT: dict[str, Sortable] = {
    "horodatage": EquipementStatutHistorique.horodatage,
    "id": EquipementStatutHistorique.id,
}


@equipements_router.get(
    "/{equipement_id}/historique-statut",
    response_model=list[StatutHistoriqueOut],
    summary="Every statut transition of an equipment: who, when, why (oldest first)",
)
async def historique_statut(
    equipement_id: EntityId, request: Request, session: Session, principal: CurrentPrincipal, params: Page
) -> Response:
    await equipements.get_equipement(session, equipement_id=equipement_id, principal=principal)
    query = repo.historique_query(equipement_id).order_by(
        *order_by(
            params.sort,
            _HISTORIQUE_SORT,
            default=[EquipementStatutHistorique.horodatage, EquipementStatutHistorique.id],
        )
    )
    rows, total = await fetch_page(session, query, params)
    return page_response(request, [StatutHistoriqueOut.model_validate(r) for r in rows], total=total, params=params)
