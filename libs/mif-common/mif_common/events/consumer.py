"""The consumer wrapper: idempotent handling with an inbox, bounded retries, dead-lettering.

A handler's writes and the inbox row `(consumer, event id)` commit in one transaction, so a message
delivered twice has its effect once. A handler that keeps failing is retried a few times in process,
then the message is rejected back to its quorum queue; past the queue's delivery limit RabbitMQ moves
it to `<queue>.dlq`. A message that can never succeed (not an event, invalid payload) goes to the DLQ
at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from mif_common.events.broker import Broker
from mif_common.events.envelope import CloudEvent
from mif_common.events.tables import inbox
from mif_common.events.topology import declare_consumer_queue
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
    ) -> None:
        self.name = name
        self.sessionmaker = sessionmaker
        self.handlers = dict(handlers)
        self.attempts = attempts
        self.delivery_limit = delivery_limit
        self.prefetch = prefetch
        self.retry_wait = retry_wait
        self.queue: AbstractQueue | None = None

    @property
    def queue_name(self) -> str:
        return self.name

    async def start(self, broker: Broker) -> None:
        """Declare the queue and start consuming (returns once subscribed)."""
        connection = await broker.wait_connected()
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        self.queue = await declare_consumer_queue(
            channel, self.queue_name, routing_keys=self.handlers, delivery_limit=self.delivery_limit
        )
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
            logger.exception("%s: handling %s %s failed; rejecting for redelivery", self.name, event.type, event.id)
            CONSUMED.labels(self.name, "failed").inc()
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

    async def _dead_letter(self, message: AbstractIncomingMessage) -> None:
        DEAD_LETTERS.labels(self.name).inc()
        CONSUMED.labels(self.name, "dead_lettered").inc()
        await message.reject(requeue=False)


def _delivery_count(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get("x-delivery-count", 0)
    return int(value) if isinstance(value, int) else 0
