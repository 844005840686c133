"""One robust RabbitMQ connection per process, connected in the background.

A service starts (and answers `/health/live`) while the broker is down; the relay and consumers wait
for `connected` and resume by themselves after an outage. The reconnection delay comes from the URL
(`?reconnect_interval=<seconds>`, aio-pika's default 5 s otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustChannel, AbstractRobustConnection
from aio_pika.connection import make_url

from mif_common.events.topology import declare_exchanges

logger = logging.getLogger(__name__)

# How long a publish channel may take to come back once the connection is up before it is replaced.
CHANNEL_RESTORE_TIMEOUT = 10.0


class Broker:
    def __init__(self, amqp_url: str, *, name: str) -> None:
        self.amqp_url = amqp_url
        self.name = name
        self.connection: AbstractRobustConnection | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._publish_channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._exchange_lock = asyncio.Lock()

    @property
    def is_connected(self) -> bool:
        return self.connection is not None and self.connection.connected.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name=f"{self.name}-broker-connect")

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            # Built here rather than by `connect_robust` so that a failed or cancelled first attempt
            # is closed: otherwise its background reconnection task lives on and may connect later.
            connection = aio_pika.RobustConnection(
                make_url(self.amqp_url), client_properties={"connection_name": self.name}
            )
            try:
                await connection.connect(timeout=5)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await connection.close()
                if not isinstance(exc, Exception):
                    raise  # cancelled
                # Whatever the failure, this task must not die: retry.
                logger.warning("%s: broker unreachable (%r); retrying in %.1fs", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.connection = connection
            self._ready.set()
            return

    async def wait_connected(self) -> AbstractRobustConnection:
        await self._ready.wait()
        assert self.connection is not None
        await self.connection.connected.wait()
        return self.connection

    async def events_exchange(self) -> AbstractExchange:
        """The `mif.events` exchange on a channel with publisher confirms, once that channel is usable.

        Waits through an outage: after a reconnection the robust connection reopens the channel in the
        background, so this waits for it rather than opening another one (which would leak a channel
        per outage and race the restore). A channel that does not come back is replaced.
        """
        async with self._exchange_lock:
            while True:
                connection = await self.wait_connected()
                channel, exchange = self._publish_channel, self._exchange
                if channel is None or exchange is None:
                    return await self._open_publish_channel(connection)
                try:
                    # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                    async with asyncio.timeout(CHANNEL_RESTORE_TIMEOUT):
                        await channel.ready()
                    return exchange
                except TimeoutError:
                    if not self.is_connected:
                        continue  # the connection dropped again meanwhile: wait for the next one
                    logger.warning("%s: publish channel was not restored; opening a new one", self.name)
                    self._publish_channel = self._exchange = None
                    with contextlib.suppress(Exception):
                        await channel.close()

    async def _open_publish_channel(self, connection: AbstractRobustConnection) -> AbstractExchange:
        channel = await connection.channel(publisher_confirms=True)
        try:
            exchange = await declare_exchanges(channel)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._publish_channel, self._exchange = channel, exchange
        return exchange

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
