from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from mif_assets.config import AssetsSettings
from mif_assets.handlers import HANDLERS
from mif_assets.main import create_app
from mif_assets.testing import Deliver, Headers, Make
from mif_common.testing.plugin import ServiceUnderTest

ADMIN_ID, MANAGER_ID, TECH_ID = 1001, 1002, 1003


@pytest.fixture(scope="session")
def mif_service() -> ServiceUnderTest:
    return ServiceUnderTest("assets", AssetsSettings, create_app, handlers=HANDLERS)


@pytest.fixture
def admin(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("admin", user_id=ADMIN_ID)


@pytest.fixture
def manager(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("responsable", user_id=MANAGER_ID)


@pytest.fixture
def technicien(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("technicien", user_id=TECH_ID)


@pytest.fixture
def client_user(auth_headers: Callable[..., Headers]) -> Callable[[int], Headers]:
    """Headers of a user of organisation `client_id`."""
    return lambda client_id: auth_headers("client", user_id=2000 + client_id, client_id=client_id)


_names = itertools.count(1)


@pytest.fixture
def make_client(client: httpx.AsyncClient, manager: Headers) -> Make:
    """Create a client organisation through the API (as a manager); returns its JSON."""

    async def make(**fields: Any) -> dict[str, Any]:
        body = {"nom_entreprise": f"Société {next(_names)}", **fields}
        response = await client.post("/api/v1/clients", json=body, headers=manager)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


@pytest.fixture
def make_equipement(client: httpx.AsyncClient, manager: Headers) -> Make:
    """Create an equipment through the API (as a manager); returns its JSON."""

    async def make(**fields: Any) -> dict[str, Any]:
        n = next(_names)
        body = {"nom": f"Compresseur {n}", "type": "compresseur", "localisation": "Atelier A", **fields}
        response = await client.post("/api/v1/equipements", json=body, headers=manager)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


@pytest.fixture
def deliver(deliver: Deliver) -> Deliver:
    """The plugin's `deliver`, by the verb of an interventions event (what assets consumes):
    `deliver("closed", **intervention_data(...))`, or by a whole type:
    `deliver("interventions.checklist.mesure.v1", **data)`. False for a duplicate."""

    def of_verb(verb: str, *, event_id: str | None = None, **data: Any) -> Awaitable[bool]:
        event_type = verb if "." in verb else f"interventions.intervention.{verb}.v1"
        return deliver(event_type, data, event_id=event_id)

    return of_verb
