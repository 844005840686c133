"""The suite's services: names, Python packages and local ports, in one place.

The run command, the test plugin and the local process runner read this table; the gateway keeps
its own route table (which prefixes go where) in `mif_gateway.routes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    package: str
    port: int

    @property
    def schema(self) -> str:
        return self.name

    @property
    def db_role(self) -> str:
        return f"mif_{self.name}"

    @property
    def directory(self) -> Path:
        return REPO_ROOT / "services" / self.name

    @property
    def alembic_ini(self) -> Path:
        return self.directory / "alembic.ini"

    @property
    def is_built(self) -> bool:
        return self.alembic_ini.exists()


GATEWAY_PORT = 8000

ALL_SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("auth", "mif_auth", 8001),
    ServiceInfo("assets", "mif_assets", 8002),
    ServiceInfo("interventions", "mif_interventions", 8003),
    ServiceInfo("planning", "mif_planning", 8004),
    ServiceInfo("documents", "mif_documents", 8005),
    ServiceInfo("notifications", "mif_notifications", 8006),
    ServiceInfo("inventory", "mif_inventory", 8007),
    ServiceInfo("reports", "mif_reports", 8008),
)


def built_services() -> list[ServiceInfo]:
    """Services whose code exists in this checkout (the others are answered 503 by the gateway)."""
    return [s for s in ALL_SERVICES if s.is_built]


def service(name: str) -> ServiceInfo:
    for s in ALL_SERVICES:
        if s.name == name:
            return s
    raise KeyError(name)
