"""Every service's consumer queue, declared ahead of the services by `setup`.

A service declares its queue when its consumer starts; on a brand-new broker, an event published before
that moment (auth's first admin, a service that starts before another) reaches no queue and is gone.
`setup` runs before any service, so declaring every queue there closes that window.
"""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings
from mif_common.events.catalogue.discovery import service_consumer
from mif_common.events.topology import declare_consumer_queue
from mif_common.suite import ServiceInfo


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
    for svc in services:
        consumer = service_consumer(svc)
        if consumer is None:
            continue
        settings = consumer_settings(svc)
        connection = await aio_pika.connect(amqp_url or settings.amqp_url, timeout=10)
        async with connection:
            channel = await connection.channel()
            await declare_consumer_queue(
                channel,
                consumer.queue,
                routing_keys=consumer.bindings,
                delivery_limit=settings.consumer_delivery_limit,
                retry_delays=settings.consumer_retry_delays_seconds,
            )
        declared.append(consumer.queue)
    return declared
