"""Every service's consumer queue, declared ahead of the services by `setup`.

A service declares its queue when its consumer starts; on a brand-new broker, an event published before
that moment (auth's first admin, a service that starts before another) reaches no queue and is gone.
`setup` runs before any service, so declaring every queue there closes that window.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack

import aio_pika
from aio_pika.abc import AbstractConnection
from aiormq.exceptions import AMQPConnectionError
from pydantic_settings import SettingsConfigDict
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from mif_common.config import ServiceSettings
from mif_common.events.catalogue.discovery import service_consumer
from mif_common.events.topology import declare_consumer_queue
from mif_common.suite import ServiceInfo

CONNECT_ATTEMPTS = 4
CONNECT_TIMEOUT_SECONDS = 15


def consumer_settings(svc: ServiceInfo) -> ServiceSettings:
    """The service's broker settings from the same variables the service reads (`MIF_<SVC>_` over
    `MIF_`), without its own settings class: its other checks (secrets, URLs) are not setup's concern."""
    settings_cls: type[ServiceSettings] = type(
        f"{svc.name.title()}QueueSettings",
        (ServiceSettings,),
        {"model_config": SettingsConfigDict(env_prefix=f"MIF_{svc.name.upper()}_", extra="ignore")},
    )
    return settings_cls()


async def declare_service_queues(services: Iterable[ServiceInfo], *, amqp_url: str | None = None) -> list[str]:
    """Declare and bind each service's queue exactly as its consumer will; returns the queue names.
    `amqp_url` replaces the broker the services' variables name (tests: a vhost of their own)."""
    declared = []
    async with AsyncExitStack() as stack:
        connections: dict[str, AbstractConnection] = {}
        for svc in services:
            consumer = service_consumer(svc)
            if consumer is None:
                continue
            settings = consumer_settings(svc)
            url = amqp_url or settings.amqp_url
            if url not in connections:
                connections[url] = await stack.enter_async_context(await _connect(url))
            channel = await connections[url].channel()
            async with channel:
                await declare_consumer_queue(
                    channel,
                    consumer.queue,
                    routing_keys=consumer.bindings,
                    delivery_limit=settings.consumer_delivery_limit,
                    retry_delays=settings.consumer_retry_delays_seconds,
                )
            declared.append(consumer.queue)
    return declared


async def _connect(url: str) -> AbstractConnection:
    # A broker still starting, or busy enough to miss its 10 s handshake, refuses or drops the first
    # attempt; setup runs once per start, so a few retries cost nothing and save the head start.
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((OSError, TimeoutError, AMQPConnectionError)),
        stop=stop_after_attempt(CONNECT_ATTEMPTS),
        wait=wait_exponential(multiplier=1, max=8),
        reraise=True,
    ):
        with attempt:
            return await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    raise AssertionError("unreachable: AsyncRetrying re-raises the last failure")
