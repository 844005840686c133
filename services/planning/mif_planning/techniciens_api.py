"""HTTP routes of `/api/v1/techniciens`: competences, technicians, the recommendation and calendar
feed secrets. Parse, call the concept module, shape the answer."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response

from mif_common.auth import Manager
from mif_common.db import Session
from mif_common.json_bodies import dump_rows
from mif_common.listing import ReadConnections
from mif_common.openapi import problem_responses
from mif_common.pagination import Sortable, fetch_page, json_page, order_by, page_response
from mif_common.params import MAX_REPEATS, EntityId
from mif_planning import competences, service, techniciens
from mif_planning import repository as repo
from mif_planning.api import Assets, Auth, OptId, Page, Staff, settings_of
from mif_planning.models import Competence, Disponibilite, Technicien, UserRef
from mif_planning.plans_api import planning_router
from mif_planning.schemas import (
    CompetenceCreate,
    CompetenceOut,
    CompetenceUpdate,
    IcalFeedOut,
    IcalTokenOut,
    RecommandationOut,
    TechnicienCreate,
    TechnicienOut,
    TechnicienUpdate,
)

techniciens_router = APIRouter(prefix="/api/v1/techniciens", tags=["techniciens"])


async def _one_out(session: Session, technicien: Technicien) -> TechnicienOut:
    return (await techniciens.techniciens_out(session, [technicien]))[0]


# --- competences (declared before /{technicien_id}: never captured by it) -----------------------

_COMPETENCE_SORT: dict[str, Sortable] = {
    "id": Competence.id,
    "nom": sa.func.lower(Competence.nom),
    "domaine": sa.func.lower(Competence.domaine),
    "date_creation": Competence.date_creation,
}
_COMPETENCES = repo.competences_list(_COMPETENCE_SORT)


@techniciens_router.get("/competences", response_model=list[CompetenceOut], summary="List competences")
async def list_competences(
    request: Request,
    connections: ReadConnections,
    _: Staff,
    params: Page,
    domaine: Annotated[str | None, Query(max_length=100, description="Exact, case-insensitive.")] = None,
) -> Response:
    terms = repo.competences_terms(domaine=domaine, q=params.q)
    async with connections() as connection:
        rows, total = await _COMPETENCES.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
    return json_page(request, dump_rows(rows), total=total, params=params)


@techniciens_router.post("/competences", response_model=CompetenceOut, status_code=201, summary="Create a competence")
async def create_competence(body: CompetenceCreate, session: Session, response: Response, _: Manager) -> Competence:
    competence = await competences.create_competence(session, data=body)
    response.headers["Location"] = f"{techniciens_router.prefix}/competences/{competence.id}"
    return competence


@techniciens_router.get("/competences/{competence_id}", response_model=CompetenceOut, summary="One competence")
async def get_competence(competence_id: EntityId, session: Session, _: Staff) -> Competence:
    return await competences.get_competence(session, competence_id=competence_id)


@techniciens_router.put(
    "/competences/{competence_id}", response_model=CompetenceOut, summary="Edit a competence (partial)"
)
async def update_competence(
    competence_id: EntityId, body: CompetenceUpdate, session: Session, _: Manager
) -> Competence:
    return await competences.update_competence(session, competence_id=competence_id, data=body)


@techniciens_router.delete(
    "/competences/{competence_id}",
    status_code=204,
    summary="Delete a competence no technician holds (409 otherwise)",
)
async def delete_competence(competence_id: EntityId, session: Session, _: Manager) -> Response:
    await competences.delete_competence(session, competence_id=competence_id)
    return Response(status_code=204)


# --- techniciens --------------------------------------------------------------------------------

_TECHNICIEN_SORT: dict[str, Sortable] = {
    "id": Technicien.id,
    "full_name": sa.func.lower(UserRef.full_name),
    "username": sa.func.lower(UserRef.username),
    "equipe": sa.func.lower(Technicien.equipe),
    "zone": sa.func.lower(Technicien.zone),
    "disponibilite": Technicien.disponibilite,
    "date_creation": Technicien.date_creation,
    "date_modification": Technicien.date_modification,
}


@techniciens_router.get(
    "",
    response_model=list[TechnicienOut],
    summary="List technicians (managers; a technician: its own profile)",
)
async def list_techniciens(
    request: Request,
    session: Session,
    principal: Staff,
    params: Page,
    disponibilite: Annotated[
        list[Disponibilite] | None, Query(max_length=MAX_REPEATS, description="Repeat for several.")
    ] = None,
    equipe: Annotated[str | None, Query(max_length=100, description="Exact, case-insensitive.")] = None,
    zone: Annotated[str | None, Query(max_length=100, description="Exact, case-insensitive.")] = None,
    competence_id: OptId = None,
    is_active: bool | None = None,
) -> Response:
    only_id = None
    if service.is_technicien(principal):
        own = await techniciens.own_profile(session, principal)
        only_id = own.id if own is not None else 0
    query = repo.techniciens_query(
        only_id=only_id,
        disponibilite=[d.value for d in disponibilite or ()],
        equipe=equipe,
        zone=zone,
        competence_id=competence_id,
        is_active=is_active,
        q=params.q,
    ).order_by(*order_by(params.sort, _TECHNICIEN_SORT, default=[Technicien.id]))
    rows, total = await fetch_page(session, query, params)
    return page_response(request, await techniciens.techniciens_out(session, rows), total=total, params=params)


@techniciens_router.post(
    "",
    response_model=TechnicienOut,
    status_code=201,
    summary="Create the technician profile of a user whose role is technicien",
)
async def create_technicien(
    body: TechnicienCreate, session: Session, response: Response, _: Manager, auth: Auth
) -> TechnicienOut:
    technicien = await techniciens.create_technicien(session, data=body, auth=auth)
    response.headers["Location"] = f"{techniciens_router.prefix}/{technicien.id}"
    return await _one_out(session, technicien)


@techniciens_router.get(
    "/recommandation",
    response_model=list[RecommandationOut],
    summary="Technicians to assign, best first (competence level, availability, workload)",
)
async def recommandation(
    session: Session,
    _: Manager,
    assets: Assets,
    equipement_id: OptId = None,
    competence: Annotated[str | None, Query(max_length=100, description="A competence's name or id.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[RecommandationOut]:
    ranked = await techniciens.recommend(
        session, equipement_id=equipement_id, competence=competence, limit=limit, assets=assets
    )
    outs = await techniciens.techniciens_out(session, [r.technicien for r in ranked])
    return [
        RecommandationOut(
            rang=rank,
            technicien=out,
            competence=CompetenceOut.model_validate(r.competence) if r.competence else None,
            niveau=r.niveau,
            charge_travail=r.charge,
            interventions_sur_equipement=r.experience,
        )
        for rank, (r, out) in enumerate(zip(ranked, outs, strict=True), start=1)
    ]


@techniciens_router.get(
    "/me",
    response_model=TechnicienOut,
    summary="The caller's own technician profile",
    responses=problem_responses(404, s404="The caller has no technician profile."),
)
async def my_profile(session: Session, principal: Staff) -> TechnicienOut:
    own = await techniciens.own_profile(session, principal)
    if own is None:
        raise service.TechnicienIntrouvable("You have no technician profile.")
    return await _one_out(session, own)


@techniciens_router.get("/{technicien_id}", response_model=TechnicienOut, summary="One technician")
async def get_technicien(technicien_id: EntityId, session: Session, principal: Staff) -> TechnicienOut:
    technicien = await techniciens.get_technicien(session, technicien_id=technicien_id, principal=principal)
    return await _one_out(session, technicien)


@techniciens_router.put(
    "/{technicien_id}",
    response_model=TechnicienOut,
    summary="Edit a technician (partial; a technician: only its own disponibilite)",
)
async def update_technicien(
    technicien_id: EntityId, body: TechnicienUpdate, session: Session, actor: Staff
) -> TechnicienOut:
    technicien = await techniciens.update_technicien(session, technicien_id=technicien_id, data=body, actor=actor)
    return await _one_out(session, technicien)


@techniciens_router.delete("/{technicien_id}", status_code=204, summary="Delete a technician (soft delete)")
async def delete_technicien(technicien_id: EntityId, session: Session, actor: Manager) -> Response:
    await techniciens.delete_technicien(session, technicien_id=technicien_id, actor=actor)
    return Response(status_code=204)


def _feed_path(token: str) -> str:
    return f"{planning_router.prefix}/ical/{token}"


@techniciens_router.get(
    "/{technicien_id}/ical-token",
    response_model=IcalFeedOut,
    summary="Whether the technician's calendar feed URL exists (its secret is shown only when issued)",
)
async def ical_feed_state(technicien_id: EntityId, session: Session, principal: Staff) -> IcalFeedOut:
    technicien = await techniciens.get_technicien(session, technicien_id=technicien_id, principal=principal)
    return IcalFeedOut(
        technicien_id=technicien.id,
        actif=technicien.ical_token_hash is not None,
        created_at=technicien.ical_token_created_at,
    )


@techniciens_router.post(
    "/{technicien_id}/ical-token",
    response_model=IcalTokenOut,
    status_code=201,
    summary="Issue the technician's calendar feed URL (revokes the previous one)",
)
async def issue_ical_token(
    technicien_id: EntityId, request: Request, session: Session, principal: Staff
) -> IcalTokenOut:
    token, created_at = await techniciens.issue_feed_token(session, technicien_id=technicien_id, principal=principal)
    path = _feed_path(token)
    return IcalTokenOut(
        technicien_id=technicien_id,
        token=token,
        path=path,
        url=settings_of(request).public_url.rstrip("/") + path,
        created_at=created_at,
    )


@techniciens_router.delete(
    "/{technicien_id}/ical-token", status_code=204, summary="Revoke the technician's calendar feed URL"
)
async def revoke_ical_token(technicien_id: EntityId, session: Session, principal: Staff) -> Response:
    await techniciens.revoke_feed_token(session, technicien_id=technicien_id, principal=principal)
    return Response(status_code=204)
