"""Shared by the end-to-end tests: the running suite's handles."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx

from mif_auth.testing import PASSWORD
from mif_common.events import CloudEvent
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.processes import ServiceProcess
from mif_notifications.testing import SmtpSink

ADMIN_EMAIL = "admin@e2e.mif.ma"


@dataclass
class Suite:
    gateway: ServiceProcess
    auth: ServiceProcess
    assets: ServiceProcess
    interventions: ServiceProcess
    planning: ServiceProcess
    notifications: ServiceProcess
    documents: ServiceProcess
    smtp: SmtpSink  # receives what notifications sends
    database: TestDatabase
    amqp_url: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.gateway.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    @contextlib.contextmanager
    def stopped(self, process: ServiceProcess) -> Iterator[ServiceProcess]:
        """One service down for the duration of the block, back on the same port afterwards."""
        process.stop()
        try:
            yield process
        finally:
            process.start()

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        response = httpx.post(f"{self.url}/api/v1/auth/login", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_for(check: Callable[[], Any], *, what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; events cross processes, so allow for a loaded CI."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def event(event_type: str, data: dict[str, Any], *, subject: str | None = None) -> CloudEvent:
    """A CloudEvent as its owner's relay would send it (the source is the type's service)."""
    return CloudEvent(source=f"/mif/{event_type.split('.')[0]}", type=event_type, subject=subject, data=data)


def publish(suite: Suite, *events: CloudEvent) -> None:
    """Publish events on `mif.events` as their owners would (for facts no running service produces)."""

    async def send() -> None:
        connection = await aio_pika.connect(suite.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
            for one in events:
                await exchange.publish(
                    aio_pika.Message(
                        one.model_dump_json().encode(), content_type="application/cloudevents+json", message_id=one.id
                    ),
                    routing_key=one.type,
                )

    asyncio.run(send())
