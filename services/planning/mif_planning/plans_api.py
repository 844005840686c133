"""HTTP routes of `/api/v1/planning`: preventive plans, their history, the schedule and its iCalendar
feed. Parse, call the concept module, shape the answer."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request, Response

from mif_common.auth import Manager
from mif_common.datetimes import DateTimeIn, now
from mif_common.db import Session
from mif_common.errors import Unprocessable
from mif_common.frequences import JOURS
from mif_common.openapi import problem_responses
from mif_common.pagination import Sortable, fetch_page, order_by, page_response
from mif_common.params import MAX_REPEATS, EntityId
from mif_planning import calendrier, plans, service, techniciens
from mif_planning import repository as repo
from mif_planning.api import Assets, OptId, Page, Staff, settings_of
from mif_planning.models import Plan, PlanHistorique, StatutPlan
from mif_planning.schemas import CalendrierEntree, PlanCreate, PlanHistoriqueOut, PlanOut, PlanUpdate, as_utc

planning_router = APIRouter(prefix="/api/v1/planning", tags=["planning"])

MAX_WINDOW = timedelta(days=366)

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
        own = await techniciens.own_profile(session, principal)
        only = own.id if own is not None else 0
    query = repo.plans_query(
        only_technicien_id=only,
        statut=[s.value for s in statut or ()],
        frequence=plans.frequence_filter(frequence),
        equipement_id=equipement_id,
        technicien_id=technicien_id,
        due_before=None,
    ).order_by(*order_by(params.sort, _PLAN_SORT, default=[Plan.id]))
    rows, total = await fetch_page(session, query, params)
    return page_response(request, await plans.plans_out(session, rows), total=total, params=params)


@planning_router.post("", response_model=PlanOut, status_code=201, summary="Create a preventive plan")
async def create_plan(
    body: PlanCreate, session: Session, response: Response, actor: Manager, assets: Assets
) -> PlanOut:
    plan = await plans.create_plan(session, data=body, actor=actor, assets=assets)
    response.headers["Location"] = f"{planning_router.prefix}/{plan.id}"
    return (await plans.plans_out(session, [plan]))[0]


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
        own = await techniciens.own_profile(session, principal)
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
    technicien = await techniciens.technicien_by_feed_token(session, token=token.removesuffix(".ics"))
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
    plan = await plans.get_plan(session, plan_id=plan_id, principal=principal)
    return (await plans.plans_out(session, [plan]))[0]


_HISTORIQUE_SORT: dict[str, Sortable] = {"id": PlanHistorique.id, "horodatage": PlanHistorique.horodatage}


@planning_router.get(
    "/{plan_id}/historique",
    response_model=list[PlanHistoriqueOut],
    summary="A preventive plan's history, oldest first (a technician: its own plans)",
)
async def plan_historique(
    plan_id: EntityId, request: Request, session: Session, principal: Staff, params: Page
) -> Response:
    plan = await plans.get_plan(session, plan_id=plan_id, principal=principal)
    query = repo.historique_query(plan.id).order_by(
        *order_by(params.sort, _HISTORIQUE_SORT, default=[PlanHistorique.id])
    )
    rows, total = await fetch_page(session, query, params)
    return page_response(request, [PlanHistoriqueOut.model_validate(r) for r in rows], total=total, params=params)


@planning_router.put("/{plan_id}", response_model=PlanOut, summary="Edit a preventive plan (partial)")
async def update_plan(plan_id: EntityId, body: PlanUpdate, session: Session, actor: Manager, assets: Assets) -> PlanOut:
    plan = await plans.update_plan(session, plan_id=plan_id, data=body, assets=assets, actor_id=actor.user_id)
    return (await plans.plans_out(session, [plan]))[0]


@planning_router.delete("/{plan_id}", status_code=204, summary="Delete a preventive plan")
async def delete_plan(plan_id: EntityId, session: Session, actor: Manager) -> Response:
    await plans.delete_plan(session, plan_id=plan_id, actor_id=actor.user_id)
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
    plan = await plans.redate_plan(
        session, plan_id=plan_id, nouvelle_date=as_utc(nouvelle_date), actor_id=actor.user_id
    )
    return (await plans.plans_out(session, [plan]))[0]
