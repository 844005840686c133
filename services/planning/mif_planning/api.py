"""HTTP routes of the planning service: parse, call the service, shape the answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from mif_common.auth import Manager, Principal, Role, require_roles
from mif_common.datetimes import DateTimeIn, now
from mif_common.db import Session
from mif_common.errors import Unprocessable
from mif_common.frequences import JOURS
from mif_common.json_bodies import dump_rows
from mif_common.listing import ReadConnections
from mif_common.openapi import problem_responses
from mif_common.pagination import PageParams, Sortable, fetch_page, json_page, order_by, page_params, page_response
from mif_common.params import MAX_ID, MAX_REPEATS, EntityId
from mif_planning import calendrier, service
from mif_planning import repository as repo
from mif_planning.config import PlanningSettings
from mif_planning.models import Competence, Disponibilite, Plan, PlanHistorique, StatutPlan, Technicien, UserRef
from mif_planning.schemas import (
    CalendrierEntree,
    CompetenceCreate,
    CompetenceOut,
    CompetenceUpdate,
    IcalFeedOut,
    IcalTokenOut,
    PlanCreate,
    PlanHistoriqueOut,
    PlanOut,
    PlanUpdate,
    RecommandationOut,
    TechnicienCreate,
    TechnicienOut,
    TechnicienUpdate,
    as_utc,
)

techniciens_router = APIRouter(prefix="/api/v1/techniciens", tags=["techniciens"])
planning_router = APIRouter(prefix="/api/v1/planning", tags=["planning"])

# Managers and technicians; client users are refused (they see no technician data, no planning).
Staff = Annotated[Principal, Depends(require_roles(Role.responsable, Role.technicien))]
Page = Annotated[PageParams, Depends(page_params)]
OptId = Annotated[int | None, Query(gt=0, le=MAX_ID)]

MAX_WINDOW = timedelta(days=366)


def settings_of(request: Request) -> PlanningSettings:
    settings: PlanningSettings = request.app.state.settings
    return settings


# The owners, asked as the caller about a user or an equipment missing from the replicas.
Auth = Annotated[service.AuthUsers, Depends(service.AuthUsers.for_request)]
Assets = Annotated[service.AssetsEquipements, Depends(service.AssetsEquipements.for_request)]


async def _one_out(session: Session, technicien: Technicien) -> TechnicienOut:
    return (await service.techniciens_out(session, [technicien]))[0]


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
    competence = await service.create_competence(session, data=body)
    response.headers["Location"] = f"{techniciens_router.prefix}/competences/{competence.id}"
    return competence


@techniciens_router.get("/competences/{competence_id}", response_model=CompetenceOut, summary="One competence")
async def get_competence(competence_id: EntityId, session: Session, _: Staff) -> Competence:
    return await service.get_competence(session, competence_id=competence_id)


@techniciens_router.put(
    "/competences/{competence_id}", response_model=CompetenceOut, summary="Edit a competence (partial)"
)
async def update_competence(
    competence_id: EntityId, body: CompetenceUpdate, session: Session, _: Manager
) -> Competence:
    return await service.update_competence(session, competence_id=competence_id, data=body)


@techniciens_router.delete(
    "/competences/{competence_id}",
    status_code=204,
    summary="Delete a competence no technician holds (409 otherwise)",
)
async def delete_competence(competence_id: EntityId, session: Session, _: Manager) -> Response:
    await service.delete_competence(session, competence_id=competence_id)
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
        own = await service.own_profile(session, principal)
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
    return page_response(request, await service.techniciens_out(session, rows), total=total, params=params)


@techniciens_router.post(
    "",
    response_model=TechnicienOut,
    status_code=201,
    summary="Create the technician profile of a user whose role is technicien",
)
async def create_technicien(
    body: TechnicienCreate, session: Session, response: Response, _: Manager, auth: Auth
) -> TechnicienOut:
    technicien = await service.create_technicien(session, data=body, auth=auth)
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
    ranked = await service.recommend(
        session, equipement_id=equipement_id, competence=competence, limit=limit, assets=assets
    )
    outs = await service.techniciens_out(session, [r.technicien for r in ranked])
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
    own = await service.own_profile(session, principal)
    if own is None:
        raise service.TechnicienIntrouvable("You have no technician profile.")
    return await _one_out(session, own)


@techniciens_router.get("/{technicien_id}", response_model=TechnicienOut, summary="One technician")
async def get_technicien(technicien_id: EntityId, session: Session, principal: Staff) -> TechnicienOut:
    technicien = await service.get_technicien(session, technicien_id=technicien_id, principal=principal)
    return await _one_out(session, technicien)


@techniciens_router.put(
    "/{technicien_id}",
    response_model=TechnicienOut,
    summary="Edit a technician (partial; a technician: only its own disponibilite)",
)
async def update_technicien(
    technicien_id: EntityId, body: TechnicienUpdate, session: Session, actor: Staff
) -> TechnicienOut:
    technicien = await service.update_technicien(session, technicien_id=technicien_id, data=body, actor=actor)
    return await _one_out(session, technicien)


@techniciens_router.delete("/{technicien_id}", status_code=204, summary="Delete a technician (soft delete)")
async def delete_technicien(technicien_id: EntityId, session: Session, actor: Manager) -> Response:
    await service.delete_technicien(session, technicien_id=technicien_id, actor=actor)
    return Response(status_code=204)


def _feed_path(token: str) -> str:
    return f"{planning_router.prefix}/ical/{token}"


@techniciens_router.get(
    "/{technicien_id}/ical-token",
    response_model=IcalFeedOut,
    summary="Whether the technician's calendar feed URL exists (its secret is shown only when issued)",
)
async def ical_feed_state(technicien_id: EntityId, session: Session, principal: Staff) -> IcalFeedOut:
    technicien = await service.get_technicien(session, technicien_id=technicien_id, principal=principal)
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
    token, created_at = await service.issue_feed_token(session, technicien_id=technicien_id, principal=principal)
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
    await service.revoke_feed_token(session, technicien_id=technicien_id, principal=principal)
    return Response(status_code=204)


# --- planning -----------------------------------------------------------------------------------

_FREQUENCE_DAYS = sa.case(JOURS, value=Plan.frequence)
_PLAN_SORT: dict[str, Sortable] = {
    "id": Plan.id,
    "prochaine_date": Plan.prochaine_date,
    "derniere_date": Plan.derniere_date,
    "statut": Plan.statut,
    "frequence": _FREQUENCE_DAYS,
    "equipement_id": Plan.equipement_id,
    "technicien_id": Plan.technicien_id,
    "date_creation": Plan.date_creation,
}


@planning_router.get(
    "", response_model=list[PlanOut], summary="List preventive plans (a technician: those assigned to it)"
)
async def list_plans(
    request: Request,
    session: Session,
    principal: Staff,
    params: Page,
    statut: Annotated[list[StatutPlan] | None, Query(max_length=MAX_REPEATS, description="Repeat for several.")] = None,
    frequence: Annotated[str | None, Query(max_length=40, description="Any accepted spelling.")] = None,
    equipement_id: OptId = None,
    technicien_id: OptId = None,
) -> Response:
    only = None
    if service.is_technicien(principal):
        own = await service.own_profile(session, principal)
        only = own.id if own is not None else 0
    query = repo.plans_query(
        only_technicien_id=only,
        statut=[s.value for s in statut or ()],
        frequence=service.frequence_filter(frequence),
        equipement_id=equipement_id,
        technicien_id=technicien_id,
        due_before=None,
    ).order_by(*order_by(params.sort, _PLAN_SORT, default=[Plan.id]))
    rows, total = await fetch_page(session, query, params)
    return page_response(request, await service.plans_out(session, rows), total=total, params=params)


@planning_router.post("", response_model=PlanOut, status_code=201, summary="Create a preventive plan")
async def create_plan(
    body: PlanCreate, session: Session, response: Response, actor: Manager, assets: Assets
) -> PlanOut:
    plan = await service.create_plan(session, data=body, actor=actor, assets=assets)
    response.headers["Location"] = f"{planning_router.prefix}/{plan.id}"
    return (await service.plans_out(session, [plan]))[0]


# A date alone ("2026-03-01") is accepted: midnight UTC. Years 1900-2999 (mif_common.datetimes).
DateParam = DateTimeIn


@planning_router.get(
    "/calendrier",
    response_model=list[CalendrierEntree],
    summary="Schedule: plan occurrences and assigned interventions in a window (a technician: its own)",
    responses=problem_responses(404, s404="A technician asked for another technician's schedule (`technicien_id`)."),
)
async def calendrier_entries(
    session: Session,
    principal: Staff,
    from_: Annotated[
        DateParam | None, Query(alias="from", description="Start (ISO 8601; default: today 00:00 UTC).")
    ] = None,
    to: Annotated[DateParam | None, Query(description="End, excluded (default: 31 days after the start).")] = None,
    technicien_id: OptId = None,
) -> list[CalendrierEntree]:
    start = as_utc(from_) if from_ is not None else as_utc(now().date())
    end = as_utc(to) if to is not None else start + timedelta(days=31)
    if end <= start or end - start > MAX_WINDOW:
        raise Unprocessable(
            "The window must end after it starts and span at most 366 days.",
            errors=[{"field": "to", "message": "must be after from, at most 366 days later"}],
        )
    if service.is_technicien(principal):
        own = await service.own_profile(session, principal)
        if own is None:
            return []
        if technicien_id is not None and technicien_id != own.id:
            raise service.TechnicienIntrouvable(f"No technician with id {technicien_id}.")
        technicien_id = own.id
    return await calendrier.entries(session, technicien_id=technicien_id, start=start, end=end)


@planning_router.get(
    "/ical/{token}",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "An iCalendar (RFC 5545) feed."}},
    summary="A technician's schedule as an iCalendar feed (no login: the secret is in the URL)",
)
async def ical_feed(token: Annotated[str, Path(max_length=200)], request: Request, session: Session) -> Response:
    technicien = await service.technicien_by_feed_token(session, token=token.removesuffix(".ics"))
    settings = settings_of(request)
    at = now().replace(microsecond=0)
    entries = await calendrier.entries(
        session,
        technicien_id=technicien.id,
        start=at - timedelta(days=settings.ical_past_days),
        end=at + timedelta(days=settings.ical_future_days),
    )
    body = calendrier.ical_feed(nom=technicien.user.full_name, entries=entries, generated_at=at)
    return Response(
        content=body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'inline; filename="planning-{technicien.id}.ics"',
            "Cache-Control": "private, max-age=300",
        },
    )


@planning_router.get("/{plan_id}", response_model=PlanOut, summary="One preventive plan")
async def get_plan(plan_id: EntityId, session: Session, principal: Staff) -> PlanOut:
    plan = await service.get_plan(session, plan_id=plan_id, principal=principal)
    return (await service.plans_out(session, [plan]))[0]


_HISTORIQUE_SORT: dict[str, Sortable] = {"id": PlanHistorique.id, "horodatage": PlanHistorique.horodatage}


@planning_router.get(
    "/{plan_id}/historique",
    response_model=list[PlanHistoriqueOut],
    summary="A preventive plan's history, oldest first (a technician: its own plans)",
)
async def plan_historique(
    plan_id: EntityId, request: Request, session: Session, principal: Staff, params: Page
) -> Response:
    plan = await service.get_plan(session, plan_id=plan_id, principal=principal)
    query = repo.historique_query(plan.id).order_by(
        *order_by(params.sort, _HISTORIQUE_SORT, default=[PlanHistorique.id])
    )
    rows, total = await fetch_page(session, query, params)
    return page_response(request, [PlanHistoriqueOut.model_validate(r) for r in rows], total=total, params=params)


@planning_router.put("/{plan_id}", response_model=PlanOut, summary="Edit a preventive plan (partial)")
async def update_plan(plan_id: EntityId, body: PlanUpdate, session: Session, actor: Manager, assets: Assets) -> PlanOut:
    plan = await service.update_plan(session, plan_id=plan_id, data=body, assets=assets, actor_id=actor.user_id)
    return (await service.plans_out(session, [plan]))[0]


@planning_router.delete("/{plan_id}", status_code=204, summary="Delete a preventive plan")
async def delete_plan(plan_id: EntityId, session: Session, actor: Manager) -> Response:
    await service.delete_plan(session, plan_id=plan_id, actor_id=actor.user_id)
    return Response(status_code=204)


@planning_router.patch(
    "/{plan_id}/dates",
    response_model=PlanOut,
    summary="Re-date the next occurrence (the old next date becomes derniere_date)",
)
async def redate_plan(
    plan_id: EntityId,
    session: Session,
    actor: Manager,
    nouvelle_date: Annotated[
        DateParam,
        Query(description="The new next due date (ISO 8601); not more than one interval of the plan's frequency ago."),
    ],
) -> PlanOut:
    plan = await service.redate_plan(
        session, plan_id=plan_id, nouvelle_date=as_utc(nouvelle_date), actor_id=actor.user_id
    )
    return (await service.plans_out(session, [plan]))[0]
