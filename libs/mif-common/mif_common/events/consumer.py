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

Messages are handled in batches: what has arrived (up to `batch_size`, after waiting `batch_linger`
seconds for more) is handled in one transaction with one inbox insert, then acknowledged — a
transaction, its commit's WAL flush and an inbox round trip per batch instead of per message. If any
handler of the batch fails, the whole transaction is rolled back and each message is handled again on
its own, so a failing message is retried, parked or dead-lettered exactly as if it had come alone, and
never holds the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import sqlalchemy as sa
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

from mif_common.events.broker import Broker
from mif_common.events.contracts import untaken_types
from mif_common.events.envelope import CloudEvent
from mif_common.events.tables import inbox
from mif_common.events.topology import declare_consumer_queue, retry_queue_name
from mif_common.metrics import CONSUMED, DEAD_LETTERS
from mif_common.request_context import causation_id_var, request_id_var
from mif_common.statements import Statement

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


class PermanentEventError(Exception):
    """Raised by a handler for a message that no retry can fix; it goes straight to the DLQ."""


# Errors no retry can fix: the message goes to the DLQ at once.
_NOT_RETRIED = (PermanentEventError, ValidationError)


class _HandlerFailed(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index = index
        self.error = error


@dataclass(frozen=True, slots=True)
class _Delivery:
    message: AbstractIncomingMessage
    event: CloudEvent
    handler: Handler


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
        batch_size: int | None = None,
        batch_linger: float = 0.01,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`batch_size`: at most this many messages per transaction (default: `prefetch`, all that the
        broker lets arrive unacknowledged); `batch_linger`: how long the first message of a batch waits
        for others (a few milliseconds of latency for fewer, larger transactions under load)."""
        self.name = name
        self.sessionmaker = sessionmaker
        self.handlers = dict(handlers)
        self.attempts = attempts
        self.delivery_limit = delivery_limit
        self.prefetch = prefetch
        self.retry_wait = retry_wait
        self.retry_delays = tuple(retry_delays)
        self.dead_letter_after = dead_letter_after
        self.batch_size = batch_size or prefetch
        self.batch_linger = batch_linger
        self._clock = clock
        self.queue: AbstractQueue | None = None
        self.channel: AbstractChannel | None = None
        self._arrived: list[AbstractIncomingMessage] = []
        # Handles what has arrived; lives only while there is something to handle.
        self._draining: asyncio.Task[None] | None = None

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
            unbind=untaken_types(self.handlers),
        )
        self.channel = channel
        await self.queue.consume(self._arrive)

    async def stop(self) -> None:
        """Stop handling (the messages not yet acknowledged are redelivered; the inbox absorbs them)."""
        task, self._draining = self._draining, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _arrive(self, message: AbstractIncomingMessage) -> None:
        self._arrived.append(message)
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name=f"{self.name}-batches")

    async def _drain(self) -> None:
        try:
            while self._arrived:
                if len(self._arrived) < self.batch_size and self.batch_linger > 0:
                    await asyncio.sleep(self.batch_linger)
                batch, self._arrived = self._arrived[: self.batch_size], self._arrived[self.batch_size :]
                try:
                    await self.on_messages(batch)
                except Exception:
                    # Settling failed (the channel went away with the connection, say): the broker
                    # redelivers what was not acknowledged, and the next batches must still be handled.
                    logger.exception("%s: a batch of %s messages could not be settled", self.name, len(batch))
        finally:
            if self._draining is asyncio.current_task():
                self._draining = None

    async def on_messages(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Handle a batch: one transaction for all (see the module's docstring)."""
        await self._handle_together([d for message in messages if (d := await self._delivery(message)) is not None])

    async def _handle_together(self, deliveries: Sequence[_Delivery]) -> None:
        if len(deliveries) <= 1:
            for delivery in deliveries:
                await self._handle_alone(delivery)
            return
        try:
            processed = await self.handle_batch([(d.event, d.handler) for d in deliveries])
        except _HandlerFailed as failed:
            # Everything was rolled back. The ones before it again (their handlers run twice, their
            # effects are kept once), the failed one on its own (that call was its first attempt), then
            # the ones after it.
            await self._handle_together(deliveries[: failed.index])
            await self._handle_alone(deliveries[failed.index], failed=failed.error)
            await self._handle_together(deliveries[failed.index + 1 :])
            return
        except Exception as exc:  # the transaction itself (connection lost, commit refused)
            logger.warning(
                "%s: a batch of %s events failed (%r); handling each on its own", self.name, len(deliveries), exc
            )
            for delivery in deliveries:
                await self._handle_alone(delivery)
            return
        for delivery, fresh in zip(deliveries, processed, strict=True):
            CONSUMED.labels(self.name, "processed" if fresh else "duplicate").inc()
            await delivery.message.ack()

    async def _delivery(self, message: AbstractIncomingMessage) -> _Delivery | None:
        """The event and its handler; None once a message that is not for a handler is settled."""
        try:
            event = CloudEvent.model_validate_json(message.body)
        except ValidationError:
            logger.error("%s: message %s is not a CloudEvent; dead-lettering it", self.name, message.message_id)
            await self._dead_letter(message)
            return None
        handler = self.handlers.get(event.type)
        if handler is None:
            await message.ack()
            CONSUMED.labels(self.name, "ignored").inc()
            return None
        return _Delivery(message, event, handler)

    async def _handle_alone(self, delivery: _Delivery, *, failed: Exception | None = None) -> None:
        """Handle one message with its in-process retries; `failed`: how its first attempt (in a batch)
        failed already."""
        message, event, handler = delivery.message, delivery.event, delivery.handler
        attempts = self.attempts - (1 if failed is not None else 0)
        try:
            if failed is not None and (attempts == 0 or isinstance(failed, _NOT_RETRIED)):
                raise failed
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(attempts),
                wait=wait_exponential(multiplier=self.retry_wait, max=2.0),
                retry=retry_if_not_exception_type(_NOT_RETRIED),
                reraise=True,
            ):
                with attempt:
                    processed = await self.handle(event, handler)
        except _NOT_RETRIED as exc:
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
        try:
            return (await self.handle_batch([(event, handler)]))[0]
        except _HandlerFailed as failed:
            raise failed.error from None

    async def handle_batch(self, items: Sequence[tuple[CloudEvent, Handler]]) -> list[bool]:
        """Run each handler once per event id, all in one transaction; for each item, False when this
        consumer had already handled that event (before, or earlier in the same batch). A handler's
        failure rolls back the whole batch and is raised as `_HandlerFailed` (which item, what error)."""
        async with self.sessionmaker() as session, session.begin():
            rows = await _CLAIM.fetch(
                await session.connection(),
                {"consumer": self.name, "ids": [e.id for e, _ in items], "types": [e.type for e, _ in items]},
            )
            claimed = {row[0] for row in rows}
            processed: list[bool] = []
            for event, handler in items:
                fresh = event.id in claimed
                claimed.discard(event.id)  # the same event twice in one batch: handled once
                if fresh:
                    with _handling(event):
                        try:
                            await handler(session, event)
                        except Exception as exc:
                            raise _HandlerFailed(len(processed), exc) from exc
                processed.append(fresh)
        return processed

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


def _claim() -> sa.ClauseElement:
    ids = sa.func.unnest(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String())))
    types = sa.func.unnest(sa.bindparam("types", type_=postgresql.ARRAY(sa.String())))
    return (
        postgresql.insert(inbox)
        .from_select(
            ["consumer", "event_id", "event_type"],
            sa.select(sa.bindparam("consumer", type_=sa.String()), ids, types),
        )
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )


# The inbox rows of a batch, those not there yet returned: one statement whatever the batch's size (a
# VALUES list would be another statement, built and compiled, for each size).
_CLAIM = Statement(_claim, ["consumer", "ids", "types"])

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


@contextlib.contextmanager
def _handling(event: CloudEvent) -> Iterator[None]:
    """The event's correlation and causation, for what the handler logs and publishes."""
    rid_token = request_id_var.set(event.correlationid)
    cause_token = causation_id_var.set(event.id)
    try:
        yield
    finally:
        causation_id_var.reset(cause_token)
        request_id_var.reset(rid_token)


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
