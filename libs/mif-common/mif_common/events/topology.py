"""RabbitMQ topology: the events exchange, the dead-letter exchange, consumer queues and their DLQs."""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

EVENTS_EXCHANGE = "mif.events"
DEAD_LETTER_EXCHANGE = "mif.dlx"


async def declare_exchanges(channel: AbstractChannel) -> AbstractExchange:
    """Declare `mif.events` (topic) and `mif.dlx` (direct); returns the events exchange."""
    events = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    await channel.declare_exchange(DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    return events


def consumer_queue_name(service: str) -> str:
    """The durable queue of a service's event consumer (the catalogue documents it under this name)."""
    return f"mif.{service}"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def retry_queue_name(queue: str, delay_seconds: float) -> str:
    """Where a message waits `delay_seconds` before going back to `queue` (`mif.planning.retry.30s`)."""
    return f"{queue}.retry.{delay_seconds:g}s"


async def declare_consumer_queue(
    channel: AbstractChannel,
    name: str,
    *,
    routing_keys: Iterable[str],
    delivery_limit: int,
    retry_delays: Iterable[float] = (),
    unbind: Iterable[str] = (),
) -> AbstractQueue:
    """A quorum queue bound to `routing_keys`; after `delivery_limit` redeliveries a message moves to
    `<name>.dlq` through `mif.dlx`. Each of `retry_delays` gets a queue where the consumer parks a
    message that failed: it holds it that long (its TTL), then dead-letters it back to `name` through
    the default exchange, at least once (the consumer's inbox absorbs a duplicate). `unbind`: keys the
    queue may still be bound to by an earlier version, that it no longer takes."""
    events = await declare_exchanges(channel)
    dlx = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
    dlq = await channel.declare_queue(dead_letter_queue_name(name), durable=True, arguments={"x-queue-type": "quorum"})
    await dlq.bind(dlx, routing_key=name)
    for delay in retry_delays:
        await channel.declare_queue(
            retry_queue_name(name, delay),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": max(1, round(delay * 1000)),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": name,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
    queue = await channel.declare_queue(
        name,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": name,
        },
    )
    for key in routing_keys:
        await queue.bind(events, routing_key=key)
    for key in unbind:  # bindings an earlier version made (unbinding one that is not there is a no-op)
        await queue.unbind(events, routing_key=key)
    return queue
