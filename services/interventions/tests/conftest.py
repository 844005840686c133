from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_assets.testing import InProcessAssets, assets_in_process
from mif_common.app import consumer_for
from mif_common.config import ServiceSettings
from mif_common.events import CloudEvent
from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import ServiceUnderTest, TestDatabase
from mif_interventions.config import InterventionsSettings
from mif_interventions.handlers import make_handlers
from mif_interventions.main import create_app
from mif_interventions.testing import Deliver, Headers, World


@pytest.fixture(scope="session")
def mif_service() -> ServiceUnderTest:
    # No assets service unless a test brings one (the `assets` fixture): a miss is a 503.
    return ServiceUnderTest("interventions", InterventionsSettings, create_app, {"assets_url": "http://127.0.0.1:9"})


@pytest.fixture
def deliver(db_session: AsyncSession, mif_settings: ServiceSettings) -> Deliver:
    """Hand an event to the real consumer path (inbox dedupe included) inside the test's transaction.
    Returns False for a duplicate."""
    assert isinstance(mif_settings, InterventionsSettings)
    handlers = make_handlers(mif_settings)
    sessionmaker = async_sessionmaker(
        bind=db_session.bind,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        info={"source": "interventions"},
    )
    consumer = consumer_for(mif_settings, sessionmaker, handlers)

    async def handle(event_type: str, data: dict[str, Any], *, event_id: str | None = None, **envelope: Any) -> bool:
        event = CloudEvent(
            id=event_id or str(uuid.uuid4()),
            source="/mif/" + event_type.split(".")[0],
            type=event_type,
            data=data,
            **envelope,
        )
        processed = await consumer.handle(event, handlers[event_type])
        db_session.expire_all()
        return processed

    return handle


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
