from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from mif_assets.testing import InProcessAssets, assets_in_process
from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import ServiceUnderTest, TestDatabase
from mif_interventions.config import InterventionsSettings
from mif_interventions.handlers import HANDLERS
from mif_interventions.main import create_app
from mif_interventions.testing import Deliver, Headers, World


@pytest.fixture(scope="session")
def mif_service() -> ServiceUnderTest:
    # No assets service unless a test brings one (the `assets` fixture): a miss is a 503.
    return ServiceUnderTest(
        "interventions",
        InterventionsSettings,
        create_app,
        {"assets_url": "http://127.0.0.1:9"},
        handlers=HANDLERS,
    )


@pytest.fixture
def world(client: httpx.AsyncClient, deliver: Deliver, auth_headers: Callable[..., Headers]) -> World:
    return World(http=client, deliver=deliver, auth_headers=auth_headers)


@pytest.fixture
async def assets(
    app: FastAPI, mif_database: TestDatabase, mif_amqp_url: str, mif_keys: TestKeys
) -> AsyncIterator[InProcessAssets]:
    """The real assets service, in process and rolled back, answering interventions' read-throughs."""
    async with assets_in_process(
        database_url=mif_database.url_for("assets"), amqp_url=mif_amqp_url, jwks=[mif_keys.jwks]
    ) as running:
        own_http, to_assets = app.state.http, running.client()
        app.state.http = to_assets
        app.state.settings = app.state.settings.model_copy(update={"assets_url": "http://assets.test"})
        try:
            yield running
        finally:
            await to_assets.aclose()
            app.state.http = own_http
