"""Settings of the inventory service (`MIF_INVENTORY_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings


class InventorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_INVENTORY_", extra="ignore")
    service_name: ClassVar[str] = "inventory"

    # The owners asked once about an intervention or an equipment missing from the local replicas
    # (`MIF_INVENTORY_INTERVENTIONS_URL` / `MIF_INVENTORY_ASSETS_URL`, or the suite-wide `MIF_*_URL`).
    interventions_url: str = "http://127.0.0.1:8003"
    assets_url: str = "http://127.0.0.1:8002"
    # A movement retried with the same `Idempotency-Key` answers the first result for this long.
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
    idempotency_purge_interval_seconds: float = Field(default=3600.0, gt=0)
