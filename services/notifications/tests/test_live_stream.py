"""The live stream (Server-Sent Events) of a real notifications process, fed through RabbitMQ: delivery
within a second, replay with Last-Event-ID, heartbeats, and the ways a stream ends (token expiry,
deactivation, shutdown). Also the background sender of that process against the real SMTP sink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from mif_auth.testing import user_data
from mif_common.migrations import upgrade
from mif_common.provision import provision, service_database_url
from mif_common.suite import service
from mif_common.testing.events import envelope
from mif_common.testing.infra import Infra
from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import worker_namespace
from mif_common.testing.polling import eventually
from mif_common.testing.processes import ServiceProcess
from mif_notifications.testing import SmtpSink, jwks_server, to_address

pytestmark = pytest.mark.e2e

Headers = dict[str, str]
API = "/api/v1/notifications"
USER, OTHER, MANAGER, EXPIRING, DEACTIVATED, STOPPED = 9101, 9102, 9103, 9104, 9105, 9106


@dataclass
class Running:
    process: ServiceProcess
    amqp_url: str

    @property
    def url(self) -> str:
        return self.process.url


@pytest.fixture(scope="module")
def running(
    mif_infra: Infra, mif_keys: TestKeys, smtp_sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """A real notifications process with a database and a RabbitMQ vhost of its own, trusting the test
    keys, sending to the session's SMTP sink."""
    info = service("notifications")
    # One database per xdist worker: the module's tests may run on both workers at once.
    name = f"mif_test_{worker_namespace()}_notifications_live"

    def prepare() -> str:
        provision(mif_infra.admin_dsn, name, [info], recreate=True)
        url = service_database_url(mif_infra.admin_dsn, name, info)
        upgrade(info.alembic_ini, url)
        return url

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        database_url = pool.submit(prepare).result()
        amqp_url = pool.submit(mif_infra.new_vhost).result()
    with jwks_server(mif_keys.jwks) as jwks_url:
        process = ServiceProcess(
            "notifications",
            "mif_notifications.main:create_app",
            env={
                "MIF_ENVIRONMENT": "test",
                "MIF_LOG_JSON": "false",
                "MIF_NOTIFICATIONS_DATABASE_URL": database_url,
                "MIF_NOTIFICATIONS_AMQP_URL": amqp_url,
                "MIF_NOTIFICATIONS_JWKS_URL": jwks_url,
                "MIF_NOTIFICATIONS_SMTP_HOST": smtp_sink.host,
                "MIF_NOTIFICATIONS_SMTP_PORT": str(smtp_sink.port),
                "MIF_NOTIFICATIONS_SSE_HEARTBEAT_SECONDS": "0.5",
                "MIF_NOTIFICATIONS_OUTBOX_POLL_INTERVAL": "0.5",
                # No auth runs here: the test tokens' users are known to no token state.
                "MIF_NOTIFICATIONS_REVOCATION_ENABLED": "false",
            },
            log_dir=Path(tmp_path_factory.mktemp("notifications-live")),
        )
        process.start()
        try:
            yield Running(process=process, amqp_url=amqp_url)
        finally:
            process.stop()


async def publish(amqp_url: str, *events: Any) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
        for event in events:
            await exchange.publish(
                aio_pika.Message(event.model_dump_json().encode(), content_type="application/cloudevents+json"),
                routing_key=event.type,
            )


async def known_user(running: Running, http: httpx.AsyncClient, user_id: int, headers: Headers, **extra: Any) -> None:
    """Publish the user's creation and wait for its welcome (the user is then in the replica)."""
    await publish(running.amqp_url, envelope("auth.user.created.v1", user_data(user_id, **extra)))

    async def welcomed() -> bool:
        response = await http.get(f"{running.url}{API}", headers=headers)
        return response.status_code == 200 and any(n["titre"].startswith("Bienvenue") for n in response.json())

    await eventually(welcomed, what=f"user {user_id}'s welcome", within=15.0)


@dataclass
class Stream:
    """An open SSE response, read event by event."""

    response: httpx.Response
    comments: list[str] = field(default_factory=list)
    _lines: AsyncIterator[str] | None = None

    async def next_event(self, *, within: float = 5.0) -> dict[str, Any] | None:
        """The next event ({id, data}), or None when the stream ended."""
        if self._lines is None:
            self._lines = self.response.aiter_lines()
        event: dict[str, Any] = {}
        async with asyncio.timeout(within):
            async for line in self._lines:
                if line == "":
                    if "data" in event:
                        return event
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    continue
                key, _, value = line.partition(":")
                event[key] = value.removeprefix(" ")
                if key == "data":
                    event["data"] = json.loads(event["data"])
        return None


@contextlib.asynccontextmanager
async def open_stream(url: str, headers: Headers, *, last_event_id: int | None = None) -> AsyncIterator[Stream]:
    sent = dict(headers)
    if last_event_id is not None:
        sent["Last-Event-ID"] = str(last_event_id)
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=30.0)) as http,
        http.stream("GET", f"{url}{API}/stream", headers=sent) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        yield Stream(response)


async def send(http: httpx.AsyncClient, running: Running, manager: Headers, user_id: int, titre: str) -> int:
    response = await http.post(
        f"{running.url}{API}", json={"user_id": user_id, "titre": titre, "contenu": "…"}, headers=manager
    )
    assert response.status_code == 201, response.text
    return int(response.json()[0]["id"])


async def test_live_delivery_within_a_second_then_replay_after_reconnect(
    running: Running, auth_headers: Callable[..., Headers], smtp_sink: SmtpSink
) -> None:
    user, other = auth_headers("technicien", user_id=USER), auth_headers("technicien", user_id=OTHER)
    manager = auth_headers("responsable", user_id=MANAGER)
    async with httpx.AsyncClient(timeout=10) as http:
        await known_user(running, http, USER, user)
        await known_user(running, http, OTHER, other)
        # The process's own sender mailed the welcome.
        await asyncio.to_thread(smtp_sink.wait_for, lambda m: to_address(m) == f"tech{USER}@example.ma")

        async with open_stream(running.url, user) as stream, open_stream(running.url, other) as others:
            started = time.monotonic()
            first = await send(http, running, manager, USER, "Premier")
            event = await stream.next_event(within=1.0)
            assert event is not None and time.monotonic() - started < 1.0
            assert event["id"] == str(first)  # not the welcome: without Last-Event-ID, only what comes next
            assert event["data"]["titre"] == "Premier" and event["data"]["user_id"] == USER
            assert event["data"]["lue"] is False and event["data"]["livraisons"][0]["canal"] == "email"
            with pytest.raises(TimeoutError):
                await others.next_event(within=1.0)
            assert ": heartbeat" in others.comments  # every 0.5 s in this process

        # Missed while disconnected, replayed in order on reconnection; then live again.
        second = await send(http, running, manager, USER, "Deuxième")
        third = await send(http, running, manager, USER, "Troisième")
        async with open_stream(running.url, user, last_event_id=first) as stream:
            replayed = [await stream.next_event(), await stream.next_event()]
            assert [e["id"] for e in replayed if e] == [str(second), str(third)]
            assert [e["data"]["titre"] for e in replayed if e] == ["Deuxième", "Troisième"]
            fourth = await send(http, running, manager, USER, "Quatrième")
            live = await stream.next_event(within=1.0)
            assert live is not None and live["id"] == str(fourth)


async def test_a_stream_ends_when_its_token_expires(running: Running, make_token: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {make_token('technicien', user_id=EXPIRING, ttl=2)}"}
    started = time.monotonic()
    async with open_stream(running.url, headers) as stream:
        assert await stream.next_event(within=6.0) is None  # ended by the server
    assert 1.0 < time.monotonic() - started < 6.0
    assert ": heartbeat" in stream.comments


async def test_a_deactivated_users_stream_ends(running: Running, auth_headers: Callable[..., Headers]) -> None:
    headers = auth_headers("client", user_id=DEACTIVATED, client_id=3)
    async with httpx.AsyncClient(timeout=10) as http:
        await known_user(running, http, DEACTIVATED, headers, role="client", client_id=3)
    async with open_stream(running.url, headers) as stream:
        await publish(
            running.amqp_url,
            envelope("auth.user.deactivated.v1", user_data(DEACTIVATED, "client", client_id=3, is_active=False)),
        )
        assert await stream.next_event(within=5.0) is None


async def test_shutdown_ends_open_streams_cleanly(running: Running, auth_headers: Callable[..., Headers]) -> None:
    headers = auth_headers("technicien", user_id=STOPPED)
    try:
        async with open_stream(running.url, headers) as stream:
            started = time.monotonic()
            stopping = asyncio.create_task(asyncio.to_thread(running.process.stop))
            assert await stream.next_event(within=5.0) is None  # the body ended normally
            await stopping
            # What held the process, if anything did, is in its own log (mif_common.app names each step).
            assert time.monotonic() - started < 5.0, running.process.tail(30)
        # uvicorn re-raises the SIGTERM it handled once shut down: -15 is its normal exit.
        assert running.process.process is not None and running.process.process.returncode in (0, -signal.SIGTERM)
        assert "Application shutdown complete." in running.process.tail(5)
    finally:
        await asyncio.to_thread(running.process.start)


async def test_the_stream_needs_a_valid_token(running: Running, make_token: Callable[..., str]) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{running.url}{API}/stream")).status_code == 401
        expired = {"Authorization": f"Bearer {make_token('technicien', user_id=1, ttl=-60)}"}
        assert (await http.get(f"{running.url}{API}/stream", headers=expired)).status_code == 401
