"""HTTP routes of the KPIs (`/api/v1/kpis`): scope the question, run its formula, shape the answer.

Every route takes the same period, bucket size (`pas`) and filters, and answers the formula it applied.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from mif_common.auth import CurrentPrincipal
from mif_common.db import ReadSession
from mif_reports import kpis, pannes
from mif_reports.config import ReportsSettings
from mif_reports.kpis import FORMULES
from mif_reports.questions import Question
from mif_reports.scope import Filtres, filtres, question

kpis_router = APIRouter(prefix="/api/v1/kpis", tags=["kpis"])

Params = Annotated[Filtres, Depends(filtres)]


class KpiOut(BaseModel):
    """A KPI's answer: the question as answered (scope applied), the formula, the figure over the whole
    period (`valeur`), and `series`, one entry per bucket (`periode`: its first day). Ratios are 0–1,
    durations minutes or hours as named, amounts integer centimes of MAD."""

    model_config = ConfigDict(extra="allow")

    kpi: str
    formule: str
    du: date
    au: date
    pas: str
    filtres: dict[str, Any]
    valeur: Any
    series: list[dict[str, Any]]


class KpiInfo(BaseModel):
    kpi: str
    chemin: str
    formule: str


def _settings(request: Request) -> ReportsSettings:
    settings: ReportsSettings = request.app.state.settings
    return settings


def _answer(name: str, q: Question, figures: dict[str, Any]) -> dict[str, Any]:
    applied = {
        k: v
        for k, v in asdict(q).items()
        if k not in ("du", "au", "pas", "fuseau", "rien") and v is not None and v != -1
    }
    return {"kpi": name, "formule": FORMULES[name], "du": q.du, "au": q.au, "pas": q.pas, "filtres": applied, **figures}


async def _ask(request: Request, session: ReadSession, principal: CurrentPrincipal, f: Filtres) -> Question:
    return await question(session, principal, f, ZoneInfo(_settings(request).fuseau))


@kpis_router.get("", response_model=list[KpiInfo], summary="The KPIs served here, with their formulas")
async def list_kpis(_: CurrentPrincipal) -> list[KpiInfo]:
    return [KpiInfo(kpi=name, chemin=f"/api/v1/kpis/{name}", formule=formule) for name, formule in FORMULES.items()]


Compute = Callable[[ReadSession, Question, ReportsSettings], Awaitable[dict[str, Any]]]


def _route(name: str, summary: str, compute: Compute) -> None:
    async def endpoint(
        request: Request, session: ReadSession, principal: CurrentPrincipal, f: Params
    ) -> dict[str, Any]:
        q = await _ask(request, session, principal, f)
        return _answer(name, q, await compute(session, q, _settings(request)))

    endpoint.__name__ = f"kpi_{name.replace('-', '_')}"
    kpis_router.add_api_route(
        f"/{name}",
        endpoint,
        methods=["GET"],
        response_model=KpiOut,
        summary=summary,
        description=FORMULES[name]
        + "\n\nScope: a client user gets its organisation's figures only, a technician those "
        "of its own interventions, a manager everything.",
        operation_id=f"kpi_{name.replace('-', '_')}",
    )


_route("mttr", "Mean time to repair, per intervention type", lambda s, q, _: kpis.mttr(s, q))
_route("mtbf", "Mean time between failures, per equipment", lambda s, q, _: pannes.pannes(s, q))
_route("disponibilite", "Availability, per equipment", lambda s, q, _: pannes.pannes(s, q))
_route("backlog", "Open interventions over time, and their ages", lambda s, q, _: kpis.backlog(s, q))
_route("conformite-preventive", "Preventive compliance", lambda s, q, _: kpis.conformite_preventive(s, q))
_route("sla", "SLA compliance, per priority", lambda s, q, _: kpis.sla(s, q))
_route("premiere-resolution", "First-time fix rate", lambda s, q, _: kpis.premiere_resolution(s, q))
_route(
    "utilisation",
    "Technician utilisation",
    lambda s, q, settings: kpis.utilisation(s, q, minutes_par_jour=settings.minutes_disponibles_par_jour),
)


@kpis_router.get(
    "/couts",
    response_model=KpiOut,
    summary="Costs: labour, parts, total",
    description=FORMULES["couts"] + "\n\n`par` adds one group per equipment, client or technician. Scope as above.",
    operation_id="kpi_couts",
)
async def kpi_couts(
    request: Request,
    session: ReadSession,
    principal: CurrentPrincipal,
    f: Params,
    par: Annotated[Literal["equipement", "client", "technicien"] | None, Query()] = None,
) -> dict[str, Any]:
    q = await _ask(request, session, principal, f)
    settings = _settings(request)
    column = f"{par}_id" if par is not None else None
    return _answer("couts", q, await kpis.couts(session, q, taux_horaire=settings.taux_horaire, par=column))
