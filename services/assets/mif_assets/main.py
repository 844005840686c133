"""App factory of the assets service: `uvicorn --factory mif_assets.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from mif_assets.api import clients_router, equipements_router
from mif_assets.compteurs_api import compteurs_router
from mif_assets.config import AssetsSettings
from mif_assets.handlers import HANDLERS
from mif_common.app import ServiceParts, create_service_app


def create_app(settings: AssetsSettings | None = None) -> FastAPI:
    settings = settings or AssetsSettings()
    return create_service_app(
        settings,
        ServiceParts(
            title="MIF assets service",
            description=(
                "Client organisations (contracts, service level) and equipment, with the history of every "
                "equipment statut; equipment meters and their readings (HTTP batches, MQTT through the "
                "ingestion worker), raw or downsampled. Publishes `assets.client.*.v1`, "
                "`assets.equipement.*.v1`, `assets.compteur.*.v1` and `assets.releves.recorded.v1`; consumes "
                "`interventions.intervention.*.v1` (statut side effects, deletion guard)."
            ),
            routers=[clients_router, equipements_router, compteurs_router],
            handlers=HANDLERS,
        ),
    )
