"""Settings of the interventions service (`MIF_INTERVENTIONS_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings


def default_sla_hours() -> dict[str, int]:
    """Deadline after creation per priority (DOMAIN.md §4); `programmee` has none."""
    return {"urgente": 2, "haute": 24, "normale": 72, "basse": 168}


class InterventionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_INTERVENTIONS_", extra="ignore")
    service_name: ClassVar[str] = "interventions"

    # The assets service, asked once about an equipment missing from the local replica
    # (`MIF_INTERVENTIONS_ASSETS_URL`, or suite-wide `MIF_ASSETS_URL`).
    assets_url: str = "http://127.0.0.1:8002"
    assets_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # The planning service, asked which technician to assign when "Affecter" comes without one
    # (`MIF_INTERVENTIONS_PLANNING_URL`, or suite-wide `MIF_PLANNING_URL`).
    planning_url: str = "http://127.0.0.1:8004"
    planning_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # `date_limite` defaults to creation + this many hours (JSON: '{"urgente": 2, ...}').
    sla_hours: dict[str, int] = Field(default_factory=default_sla_hours)
    # Lateness job: how often it looks for interventions past their deadline, and how many per pass.
    late_check_interval_seconds: float = Field(default=60.0, gt=0)
    late_batch_size: int = Field(default=200, ge=1, le=10_000)
    # Idempotency keys are remembered this long.
    idempotency_ttl_hours: int = Field(default=24, ge=1, le=24 * 30)
