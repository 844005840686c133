"""Which service serves which `/api/v1/<prefix>`: the gateway's route table (ARCHITECTURE §1)."""

from __future__ import annotations

from mif_common.suite import ALL_SERVICES

API_PREFIX = "/api/v1/"

# First path segment after /api/v1 → service.
PREFIXES: dict[str, str] = {
    "auth": "auth",
    "users": "auth",
    "clients": "assets",
    "equipements": "assets",
    "interventions": "interventions",
    "filters": "interventions",
    "dashboard": "interventions",
    "techniciens": "planning",
    "planning": "planning",
    "documents": "documents",
    "notifications": "notifications",
    "pieces": "inventory",
    "stock": "inventory",
    "kpis": "reports",
    "rapports": "reports",
}

# `/api/v1/<service>/openapi.json` and `/docs` go to the service of that name (e.g. `assets`).
SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in ALL_SERVICES)
_TABLE: dict[str, str] = {**{name: name for name in SERVICE_NAMES}, **PREFIXES}


def service_for(path: str) -> str | None:
    """The service owning a normalised `/api/v1/...` path, or None."""
    if not path.startswith(API_PREFIX):
        return None
    segment = path[len(API_PREFIX) :].split("/", 1)[0]
    return _TABLE.get(segment)
