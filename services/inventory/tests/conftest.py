from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import ServiceUnderTest
from mif_common.testing.standin import StandIn
from mif_interventions.testing import intervention_data
from mif_inventory.config import InventorySettings
from mif_inventory.handlers import HANDLERS
from mif_inventory.main import create_app
from mif_inventory.testing import (
    ADMIN_ID,
    CLIENT_A,
    MANAGER_ID,
    OTHER_TECH_ID,
    OTHER_TECH_USER_ID,
    TECH_ID,
    TECH_USER_ID,
    Deliver,
    Headers,
    Make,
)
from mif_planning.testing import technicien_data


@pytest.fixture(scope="session")
async def standin(mif_keys: TestKeys) -> AsyncIterator[StandIn]:
    """A real HTTP server standing in for interventions and assets (read-through) and auth (JWKS)."""
    server = await StandIn(jwks=mif_keys.jwks).start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def mif_service(standin: StandIn) -> ServiceUnderTest:
    return ServiceUnderTest(
        "inventory",
        InventorySettings,
        create_app,
        handlers=HANDLERS,
        settings_overrides={"interventions_url": standin.url, "assets_url": standin.url},
    )


@pytest.fixture
def admin(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("admin", user_id=ADMIN_ID)


@pytest.fixture
def manager(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("responsable", user_id=MANAGER_ID)


@pytest.fixture
def technicien(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("technicien", user_id=TECH_USER_ID)


@pytest.fixture
def other_technicien(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("technicien", user_id=OTHER_TECH_USER_ID)


@pytest.fixture
def client_user(auth_headers: Callable[..., Headers]) -> Callable[[int], Headers]:
    """Headers of a user of organisation `client_id`."""
    return lambda client_id: auth_headers("client", user_id=2000 + client_id, client_id=client_id)


_n = itertools.count(1)


@pytest.fixture
def make_piece(client: httpx.AsyncClient, manager: Headers) -> Make:
    """A part of the catalogue, created through the API as a manager; returns its JSON."""

    async def make(**fields: Any) -> dict[str, Any]:
        n = next(_n)
        body = {"reference": f"REF-{n:05d}", "nom": f"Roulement {n}", "prix_unitaire": 4_550, **fields}
        response = await client.post("/api/v1/pieces", json=body, headers=manager)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


@pytest.fixture
def make_emplacement(client: httpx.AsyncClient, manager: Headers) -> Make:
    async def make(**fields: Any) -> dict[str, Any]:
        n = next(_n)
        body = {"code": f"MAG-{n}", "nom": f"Magasin {n}", "type": "magasin_central", **fields}
        response = await client.post("/api/v1/stock/emplacements", json=body, headers=manager)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


@pytest.fixture
def receive(client: httpx.AsyncClient, manager: Headers) -> Callable[..., Awaitable[httpx.Response]]:
    """Record an `entree` of `quantite` of a part at a location (as a manager)."""

    async def entree(piece_id: int, emplacement_id: int, quantite: float) -> httpx.Response:
        body = {"type": "entree", "piece_id": piece_id, "emplacement_id": emplacement_id, "quantite": quantite}
        response = await client.post("/api/v1/stock/mouvements", json=body, headers=manager)
        assert response.status_code == 201, response.text
        return response

    return entree


@pytest.fixture
async def known_interventions(deliver: Deliver) -> Callable[..., Awaitable[int]]:
    """An intervention inventory knows from interventions' events; technicians TECH_ID/OTHER_TECH_ID
    are known to be TECH_USER_ID/OTHER_TECH_USER_ID."""
    await deliver("planning.technicien.created.v1", technicien_data(TECH_ID, TECH_USER_ID))
    await deliver("planning.technicien.created.v1", technicien_data(OTHER_TECH_ID, OTHER_TECH_USER_ID))

    async def known(
        intervention_id: int,
        *,
        statut: str = "en_cours",
        technicien_id: int | None = TECH_ID,
        client_id: int = CLIENT_A,
    ) -> int:
        verb = {"en_cours": "started", "affectee": "assigned", "en_attente": "paused", "ouverte": "created"}.get(
            statut, "updated"
        )
        await deliver(
            f"interventions.intervention.{verb}.v1",
            intervention_data(
                intervention_id, statut=statut, technicien_id=technicien_id, client_id=client_id, equipement_id=9
            ),
        )
        return intervention_id

    return known
