"""App factory of the inventory service: `uvicorn --factory mif_inventory.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from mif_common.app import ServiceParts, create_service_app
from mif_inventory.config import InventorySettings
from mif_inventory.handlers import HANDLERS
from mif_inventory.jobs import periodic_jobs
from mif_inventory.owners import AssetsEquipements, InterventionsClient
from mif_inventory.pieces_api import pieces_router
from mif_inventory.stock_api import stock_router


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    return create_service_app(
        settings,
        ServiceParts(
            title="MIF inventory service",
            description=(
                "Spare parts catalogue, storage locations, stock per location with its append-only movements "
                "ledger, and the parts reserved, consumed and returned on interventions (their cost reaches "
                "interventions as `cout_pieces`). Publishes `inventory.piece.*.v1`, `inventory.stock.moved.v1`, "
                "`inventory.stock.low.v1` and `inventory.intervention.parts_costed.v1`; consumes "
                "`interventions.intervention.*.v1`, `planning.technicien.*.v1` and `assets.equipement.*.v1`."
            ),
            routers=[pieces_router, stock_router],
            handlers=HANDLERS,
            periodic_jobs=periodic_jobs(settings),
            owners=[InterventionsClient, AssetsEquipements],
        ),
    )
