"""App factory of the planning service: `uvicorn --factory mif_planning.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from mif_common.app import ServiceParts, create_service_app
from mif_planning.checklists_api import checklists_router
from mif_planning.config import PlanningSettings
from mif_planning.handlers import HANDLERS
from mif_planning.jobs import periodic_jobs
from mif_planning.owners import AssetsEquipements, AuthUsers
from mif_planning.plans_api import planning_router
from mif_planning.techniciens_api import techniciens_router


def create_app(settings: PlanningSettings | None = None) -> FastAPI:
    settings = settings or PlanningSettings()
    return create_service_app(
        settings,
        ServiceParts(
            title="MIF planning service",
            description=(
                "Technicians (profiles, competences, availability, workload, recommendation), preventive plans "
                "and their scheduler, checklist templates, the technicians' schedule and its iCalendar feed. "
                "Publishes `planning.technicien.*.v1`, `planning.occurrence.due.v1`, "
                "`planning.occurrence.reminder.v1`, `planning.plan.overdue.v1`, `planning.plan.suspended.v1`, "
                "`planning.checklist.*.v1`; consumes `auth.user.*.v1`, `assets.equipement.*.v1` and "
                "`interventions.intervention.*.v1`."
            ),
            # checklists first: `/api/v1/planning/checklists` is not a plan id
            routers=[techniciens_router, checklists_router, planning_router],
            handlers=HANDLERS,
            periodic_jobs=periodic_jobs(settings),
            owners=[AuthUsers, AssetsEquipements],
        ),
    )
