"""HTTP routes of the dashboard: `/dashboard/stats` and `/dashboard/kpis` (dashboard.py computes them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mif_common.auth import CurrentPrincipal
from mif_common.datetimes import DateTimeIn, now
from mif_common.db import ReadSession
from mif_common.errors import Unprocessable
from mif_interventions import dashboard, service
from mif_interventions.dashboard_schemas import DashboardKpis, DashboardStats

dashboard_router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])


@dashboard_router.get(
    "/stats",
    summary="Dashboard figures of the existing frontend (DOMAIN.md §8), over what the caller may see",
    description=(
        "`interventions.ouverte` counts `ouverte` and `affectee` (not started); `terminees` the closed ones "
        "(`date_cloture` set, archived or not); `*_mensuel`: created / closed since the first of this month "
        "(UTC); `taux_resolution` = terminees ÷ (all − cancelled) × 100; `evolution_mensuelle`: interventions "
        "created per month, the last six months; `priorites`: all visible interventions per priority; "
        "`equipements` and `utilisateurs` come from the replicas of assets and auth."
    ),
    response_model=DashboardStats,
)
async def stats(session: ReadSession, principal: CurrentPrincipal) -> DashboardStats:
    scope = await service.scope_of(session, principal)
    return DashboardStats.model_validate(await dashboard.stats(session, scope=scope, principal=principal, at=now()))


@dashboard_router.get(
    "/kpis",
    summary="Maintenance KPIs over a period: backlog, late, MTTR, resolution time, SLA compliance, parts cost",
    description=(
        "Over what the caller may see; period `du` ≤ date_cloture < `au` (default: the last 30 days).\n\n"
        "- `backlog`: open interventions now (ouverte, affectee, en_cours, en_attente) by statut and priority.\n"
        "- `en_retard`: open interventions whose `date_limite` has passed.\n"
        "- `mttr.minutes` = mean(date_cloture − date_debut_travaux) over interventions closed in the period "
        "(repair time; every closed intervention was started), per type too.\n"
        "- `delai_resolution.minutes` = mean(date_cloture − date_creation), same population (lead time).\n"
        "- `sla.par_priorite[p].taux` = closed by their date_limite ÷ closed in the period with a date_limite "
        "× 100 (null without any); `programmee` has no SLA.\n"
        "- `cout_pieces_total`: centimes (MAD), the sum of `cout_pieces` (the parts inventory costed on them) "
        "over the interventions closed in the period.\n"
        "See docs/kpis.md."
    ),
    response_model=DashboardKpis,
)
async def kpis(
    session: ReadSession,
    principal: CurrentPrincipal,
    du: Annotated[DateTimeIn | None, Query(description="Period start (default: 30 days before `au`).")] = None,
    au: Annotated[DateTimeIn | None, Query(description="Period end, excluded (default: now).")] = None,
) -> DashboardKpis:
    at = now()
    default_du, default_au = dashboard.default_period(au or at)
    start, end = du or default_du, au or default_au
    if start >= end:
        raise Unprocessable(
            "The period is empty: `du` must be before `au`.", errors=[{"field": "du", "message": "must be before au"}]
        )
    scope = await service.scope_of(session, principal)
    return DashboardKpis.model_validate(await dashboard.kpis(session, scope=scope, du=start, au=end, at=at))
