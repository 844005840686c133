"""Database provisioning: one role and schema per service, and no role can read another's schema."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import pytest

from mif_common.events.queues import declare_service_queues
from mif_common.events.topology import declare_consumer_queue
from mif_common.provision import ensure_database, ensure_service_roles, service_database_url
from mif_common.suite import built_services, service
from mif_common.testing.infra import Infra
from mif_common.testing.plugin import worker_namespace


def test_a_service_role_cannot_read_another_services_schema(mif_infra: Infra) -> None:
    database = f"mif_test_{worker_namespace()}_roles"
    auth, assets = service("auth"), service("assets")

    def dsn(name: str) -> str:
        return service_database_url(mif_infra.admin_dsn, database, service(name)).replace("+asyncpg", "")

    async def scenario() -> None:
        await ensure_database(mif_infra.admin_dsn, database, recreate=True)
        await ensure_service_roles(mif_infra.admin_dsn, database, [auth, assets])
        # Idempotent: the run command provisions at every start.
        await ensure_service_roles(mif_infra.admin_dsn, database, [auth, assets])
        owner = await asyncpg.connect(dsn("auth"))
        try:
            await owner.execute("CREATE TABLE auth.secret (v text)")
            await owner.execute("INSERT INTO auth.secret VALUES ('hash')")
        finally:
            await owner.close()
        intruder = await asyncpg.connect(dsn("assets"))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await intruder.fetch("SELECT * FROM auth.secret")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await intruder.execute("CREATE TABLE auth.planted (v text)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await intruder.execute("CREATE TABLE public.planted (v text)")
            # Its own schema is its own.
            await intruder.execute("CREATE TABLE assets.mine (v text)")
        finally:
            await intruder.close()

    asyncio.run(scenario())


@pytest.fixture
def own_vhost(mif_infra: Infra) -> Iterator[str]:
    """A vhost of its own (the session's may hold these queues already), gone after the test."""
    with mif_infra.vhost() as url:
        yield url


def test_setup_declares_every_consumer_queue_before_any_service_starts(
    own_vhost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event published right after `setup`, before its consumer ever ran, waits in the queue."""
    mif_amqp_url = own_vhost
    monkeypatch.setenv("MIF_AMQP_URL", mif_amqp_url)
    monkeypatch.setenv("MIF_ASSETS_CONSUMER_DELIVERY_LIMIT", "7")  # the service's own variable wins

    async def scenario() -> None:
        queues = await declare_service_queues(built_services())
        assert {"mif.assets", "mif.interventions", "mif.notifications"} <= set(queues)
        connection = await aio_pika.connect(mif_amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange("mif.events")
            await exchange.publish(aio_pika.Message(b"{}"), routing_key="interventions.intervention.started.v1")
            # assets and notifications both consume `started`: each queue holds its copy.
            for name in ("mif.assets", "mif.notifications"):
                queue = await channel.declare_queue(name, passive=True)
                message = await queue.get(timeout=5, fail=True)
                assert message is not None
                await message.ack()
            # Declared with the same arguments the service uses, so its own declaration agrees.
            again = await connection.channel()
            await declare_consumer_queue(again, "mif.assets", routing_keys=[], delivery_limit=7)
            with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
                await declare_consumer_queue(
                    await connection.channel(), "mif.assets", routing_keys=[], delivery_limit=5
                )

    asyncio.run(scenario())


def test_setup_retries_a_broker_that_drops_its_first_handshake(own_vhost: str) -> None:
    """A busy or starting broker that closes the first connection does not cost the queues' head start."""
    upstream = urlsplit(own_vhost)
    accepted = 0

    async def flaky_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        if accepted == 1:
            writer.close()  # EOF before the broker's first frame, as the overloaded broker did
            return
        up_reader, up_writer = await asyncio.open_connection(upstream.hostname, upstream.port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def scenario() -> None:
        server = await asyncio.start_server(flaky_proxy, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        through_proxy = own_vhost.replace(upstream.netloc, f"{upstream.username}:{upstream.password}@127.0.0.1:{port}")
        async with server:
            queues = await declare_service_queues(built_services(), amqp_url=through_proxy)
        assert "mif.interventions" in queues
        assert accepted == 2, "one connection refused, then one connection for every queue"
        connection = await aio_pika.connect(own_vhost)
        async with connection:
            await (await connection.channel()).declare_queue("mif.interventions", passive=True)

    asyncio.run(scenario())
