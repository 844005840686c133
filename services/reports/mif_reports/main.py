"""App factory of the reports service: `uvicorn --factory mif_reports.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from mif_common.app import ServiceParts, create_service_app
from mif_reports.config import ReportsSettings
from mif_reports.exports_api import rapports_router
from mif_reports.handlers import HANDLERS
from mif_reports.jobs import periodic_jobs
from mif_reports.kpis_api import kpis_router
from mif_reports.owners import DocumentsClient, InterventionsClient, PlanningClient
from mif_reports.signing import install_link_signer


def create_app(settings: ReportsSettings | None = None) -> FastAPI:
    settings = settings or ReportsSettings()
    return create_service_app(
        settings,
        ServiceParts(
            title="MIF reports service",
            description=(
                "Maintenance KPIs (MTTR, MTBF, availability, backlog, preventive and SLA compliance, first-time "
                "fix, utilisation, costs), each with its formula, from a read model fed only by the other "
                "services' events; exports of lists as CSV and XLSX, work-order and monthly client reports as "
                "PDF, large ones as jobs fetched through signed, expiring links. Consumes "
                "`interventions.intervention.*.v1`, `inventory.intervention.parts_costed.v1`, "
                "`inventory.piece.*.v1`, `inventory.stock.moved.v1`, `assets.equipement.*.v1`, `assets.client.*.v1` "
                "and `planning.technicien.*.v1`."
            ),
            routers=[kpis_router, rapports_router],
            handlers=HANDLERS,
            on_startup=[install_link_signer],
            periodic_jobs=periodic_jobs(settings),
            owners=[InterventionsClient, DocumentsClient, PlanningClient],
        ),
    )
