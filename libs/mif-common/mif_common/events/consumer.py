"""The consumer wrapper: idempotent handling with an inbox, delayed retries, dead-lettering.

A handler's writes and the inbox row `(consumer, event id)` commit in one transaction, so a message
delivered twice has its effect once. A handler that keeps failing is retried a few times in process;
then the message is parked in a retry queue (`<queue>.retry.<delay>`) that hands it back after that
delay, each failure waiting longer (the last delay repeating), so that an event that arrived before
what it refers to (the owner's event still on its way) is applied minutes later instead of being lost
to the DLQ. Once it has failed for `dead_letter_after` seconds it goes to `<queue>.dlq`, from where
`python -m mif_common.cli replay-dlq <service>` sends it back. A message that can never succeed (not
an event, invalid payload) goes to the DLQ at once. The queue's delivery limit still catches a message
that crashes the process before it can be parked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from mif_common.events.broker import Broker
from mif_common.events.envelope import CloudEvent
from mif_common.events.tables import inbox
from mif_common.events.topology import declare_consumer_queue, retry_queue_name
from mif_common.metrics import CONSUMED, DEAD_LETTERS
from mif_common.request_context import causation_id_var, request_id_var

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


class PermanentEventError(Exception):
    """Raised by a handler for a message that no retry can fix; it goes straight to the DLQ."""


class EventConsumer:
    def __init__(
        self,
        *,
        name: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        handlers: Mapping[str, Handler],
        attempts: int = 3,
        delivery_limit: int = 5,
        prefetch: int = 20,
        retry_wait: float = 0.05,
        retry_delays: Sequence[float] = (),
        dead_letter_after: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.sessionmaker = sessionmaker
        self.handlers = dict(handlers)
        self.attempts = attempts
        self.delivery_limit = delivery_limit
        self.prefetch = prefetch
        self.retry_wait = retry_wait
        self.retry_delays = tuple(retry_delays)
        self.dead_letter_after = dead_letter_after
        self._clock = clock
        self.queue: AbstractQueue | None = None
        self.channel: AbstractChannel | None = None

    @property
    def queue_name(self) -> str:
        return self.name

    async def start(self, broker: Broker) -> None:
        """Declare the queue and start consuming (returns once subscribed)."""
        connection = await broker.wait_connected()
        channel = await connection.channel()  # with publisher confirms: a parked message is confirmed
        await channel.set_qos(prefetch_count=self.prefetch)
        self.queue = await declare_consumer_queue(
            channel,
            self.queue_name,
            routing_keys=self.handlers,
            delivery_limit=self.delivery_limit,
            retry_delays=self.retry_delays,
        )
        self.channel = channel
        await self.queue.consume(self.on_message)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = CloudEvent.model_validate_json(message.body)
        except ValidationError:
            logger.error("%s: message %s is not a CloudEvent; dead-lettering it", self.name, message.message_id)
            await self._dead_letter(message)
            return
        handler = self.handlers.get(event.type)
        if handler is None:
            await message.ack()
            CONSUMED.labels(self.name, "ignored").inc()
            return
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=wait_exponential(multiplier=self.retry_wait, max=2.0),
                retry=retry_if_not_exception_type((PermanentEventError, ValidationError)),
                reraise=True,
            ):
                with attempt:
                    processed = await self.handle(event, handler)
        except (PermanentEventError, ValidationError) as exc:
            logger.error("%s: event %s %s cannot be handled: %s", self.name, event.type, event.id, exc)
            await self._dead_letter(message)
            return
        except Exception:
            CONSUMED.labels(self.name, "failed").inc()
            if self.retry_delays and self.channel is not None:
                await self._retry_later(message, event)
                return
            logger.exception("%s: handling %s %s failed; rejecting for redelivery", self.name, event.type, event.id)
            # x-delivery-count counts earlier returns; the broker dead-letters once it exceeds the limit.
            if _delivery_count(message) >= self.delivery_limit:
                DEAD_LETTERS.labels(self.name).inc()
            await message.reject(requeue=True)
            return
        CONSUMED.labels(self.name, "processed" if processed else "duplicate").inc()
        await message.ack()

    async def handle(self, event: CloudEvent, handler: Handler) -> bool:
        """Run `handler` once per event id; False when this consumer already handled it."""
        rid_token = request_id_var.set(event.correlationid)
        cause_token = causation_id_var.set(event.id)
        try:
            async with self.sessionmaker() as session, session.begin():
                claimed = await session.scalar(
                    insert(inbox)
                    .values(consumer=self.name, event_id=event.id, event_type=event.type)
                    .on_conflict_do_nothing()
                    .returning(inbox.c.event_id)
                )
                if claimed is None:
                    return False
                await handler(session, event)
            return True
        finally:
            causation_id_var.reset(cause_token)
            request_id_var.reset(rid_token)

    async def _retry_later(self, message: AbstractIncomingMessage, event: CloudEvent) -> None:
        """Park the message in the retry queue of its next delay, or dead-letter it once it has been
        failing for `dead_letter_after` seconds. The copy is confirmed before the original is acked
        (a crash in between redelivers the original: the inbox absorbs the duplicate)."""
        assert self.channel is not None
        received = message.headers or {}
        retries = _header_int(received, RETRIES_HEADER)
        now = self._clock()
        # In whole milliseconds: AMQP tables carry a Python float as 32 bits (about two minutes of error).
        first_failure = _header_int(received, FIRST_FAILURE_HEADER) / 1000 or now
        if now - first_failure >= self.dead_letter_after:
            logger.exception(
                "%s: handling %s %s has failed for %.0f s (%s retries); dead-lettering it",
                self.name,
                event.type,
                event.id,
                now - first_failure,
                retries,
            )
            await self._dead_letter(message)
            return
        delay = self.retry_delays[min(retries, len(self.retry_delays) - 1)]
        logger.warning(
            "%s: handling %s %s failed (retry %s); trying again in %g s",
            self.name,
            event.type,
            event.id,
            retries + 1,
            delay,
            exc_info=True,
        )
        headers = reset_headers(received)  # the broker's bookkeeping dropped: the copy starts afresh
        headers[RETRIES_HEADER] = retries + 1
        headers[FIRST_FAILURE_HEADER] = round(first_failure * 1000)
        await self.channel.default_exchange.publish(
            copy_message(message, headers=headers), routing_key=retry_queue_name(self.name, delay)
        )
        CONSUMED.labels(self.name, "retry_scheduled").inc()
        await message.ack()

    async def _dead_letter(self, message: AbstractIncomingMessage) -> None:
        DEAD_LETTERS.labels(self.name).inc()
        CONSUMED.labels(self.name, "dead_lettered").inc()
        await message.reject(requeue=False)


# Our own retry bookkeeping, carried on the parked copies.
RETRIES_HEADER = "x-mif-retries"
FIRST_FAILURE_HEADER = "x-mif-first-failure"
# What the broker writes about deliveries and dead-lettering: a parked or replayed copy starts afresh.
_BROKER_HEADERS = (
    "x-delivery-count",
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
)


def copy_message(message: AbstractIncomingMessage, *, headers: dict[str, Any]) -> aio_pika.Message:
    """The same event, persistent, with `headers` (message id and properties kept)."""
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def reset_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Headers of a message sent back for a fresh start (a DLQ replay): no retry or broker bookkeeping."""
    fresh = dict(headers or {})
    for name in (*_BROKER_HEADERS, RETRIES_HEADER, FIRST_FAILURE_HEADER):
        fresh.pop(name, None)
    return fresh


def _header_int(headers: Mapping[str, Any], name: str) -> int:
    value = headers.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _delivery_count(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("x-delivery-count", 0)
    return int(value) if isinstance(value, int) else 0
