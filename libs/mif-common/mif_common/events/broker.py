"""One robust RabbitMQ connection per process, connected in the background.

A service starts (and answers `/health/live`) while the broker is down; the relay and consumers wait
for `connected` and resume by themselves after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection

from mif_common.events.topology import declare_exchanges

logger = logging.getLogger(__name__)


class Broker:
    def __init__(self, amqp_url: str, *, name: str) -> None:
        self.amqp_url = amqp_url
        self.name = name
        self.connection: AbstractRobustConnection | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    @property
    def is_connected(self) -> bool:
        return self.connection is not None and self.connection.connected.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name=f"{self.name}-broker-connect")

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                self.connection = await aio_pika.connect_robust(
                    self.amqp_url, client_properties={"connection_name": self.name}, timeout=5
                )
                self._ready.set()
                return
            except (TimeoutError, OSError, aio_pika.exceptions.AMQPError) as exc:
                logger.warning("broker unreachable (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def wait_connected(self) -> AbstractRobustConnection:
        await self._ready.wait()
        assert self.connection is not None
        await self.connection.connected.wait()
        return self.connection

    async def events_exchange(self) -> AbstractExchange:
        """The `mif.events` exchange on a channel with publisher confirms."""
        connection = await self.wait_connected()
        if self._publish_channel is None or self._publish_channel.is_closed or self._exchange is None:
            self._publish_channel = await connection.channel(publisher_confirms=True)
            self._exchange = await declare_exchanges(self._publish_channel)
        return self._exchange

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.close()
