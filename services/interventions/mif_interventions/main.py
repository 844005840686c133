"""App factory of the interventions service: `uvicorn --factory mif_interventions.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from mif_common.app import ServiceParts, create_service_app
from mif_interventions.checklist_api import checklist_router
from mif_interventions.comments_api import comments_router
from mif_interventions.config import InterventionsSettings
from mif_interventions.dashboard_api import dashboard_router
from mif_interventions.dispatch import PlanningClient
from mif_interventions.handlers import HANDLERS
from mif_interventions.interventions_api import filters_router, interventions_router
from mif_interventions.jobs import periodic_jobs
from mif_interventions.owners import AssetsEquipements
from mif_interventions.transitions_api import transitions_router


def create_app(settings: InterventionsSettings | None = None) -> FastAPI:
    settings = settings or InterventionsSettings()
    return create_service_app(
        settings,
        ServiceParts(
            title="MIF interventions service",
            description=(
                "Work orders (interventions) on equipment: creation, the statut workflow, field edits with "
                "`ETag`/`If-Match`, an append-only audit trail (`historique`), comments, search, and the "
                "dashboard. Publishes `interventions.intervention.*.v1` (docs/events/interventions-contract.md) "
                "and `interventions.checklist.mesure.v1` (a checklist measure that feeds a meter); checklists copied "
                "from planning's templates, filled while `en_cours`, required steps done before closing; "
                "consumes `assets.equipement.*.v1`, `planning.technicien.*.v1`, `planning.occurrence.due.v1`, "
                "`planning.checklist.*.v1`, "
                "`auth.user.*.v1` and `documents.document.*.v1`. A periodic job announces late "
                "interventions (`interventions.intervention.late.v1`, once each)."
            ),
            routers=[
                interventions_router,
                transitions_router,
                comments_router,
                checklist_router,
                filters_router,
                dashboard_router,
            ],
            handlers=HANDLERS,
            periodic_jobs=periodic_jobs(settings),
            owners=[AssetsEquipements, PlanningClient],
            openapi_tags=[
                {"name": "interventions", "description": "Work orders, their workflow, history and comments."},
                {"name": "dashboard", "description": "Figures and KPIs over the interventions the caller sees."},
            ],
        ),
    )
