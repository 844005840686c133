"""The outbox relay: publishes committed outbox rows to RabbitMQ with publisher confirms.

Invariants (docs/adr/0001-events.md): rows are claimed with `FOR UPDATE SKIP LOCKED`, so several
replicas never publish the same row at once; a row is marked published only after the broker
confirmed it, so a crash between publish and mark re-publishes it (at-least-once; consumers dedupe on
the event id); a row the broker refuses backs off exponentially without blocking the others; a lost
connection is not the rows' fault: the batch stops, nothing is counted against them, and the relay
waits for the reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aio_pika
from sqlalchemy import func, select, update
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mif_common.cancellation import raise_if_cancelling as _check_cancelled
from mif_common.events.broker import Broker
from mif_common.events.outbox import notify_channel
from mif_common.events.tables import outbox
from mif_common.listen import listen
from mif_common.metrics import OUTBOX_FAILURES, OUTBOX_LAG, OUTBOX_PENDING, OUTBOX_PUBLISHED

logger = logging.getLogger(__name__)

PUBLISHED_RETENTION = timedelta(days=7)
# Seconds between two readings of the pending rows for the lag gauges.
LAG_INTERVAL = 1.0
# Pause after losing the broker mid-batch, before waiting for the reconnection (no busy loop while
# the client has not noticed the loss yet).
BROKER_LOST_PAUSE = 0.2
# Errors meaning "the connection or channel is gone", not "the broker refused this message".
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,  # includes aiormq's AMQPConnectionError / ConnectionClosed
    aio_pika.exceptions.ChannelInvalidStateError,  # the channel is closed or being restored
)


class _Outcome(enum.Enum):
    PUBLISHED = "published"
    FAILED = "failed"  # refused (nack, channel error): the row backs off, the batch goes on
    TIMED_OUT = "timed_out"  # no confirm in time: the row backs off, the batch stops
    BROKER_LOST = "broker_lost"  # connection or channel gone: the row is untouched, the batch stops


@dataclass
class _Batch:
    claimed: int = 0
    published: int = 0
    stopped: _Outcome | None = None


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        broker: Broker,
        service: str,
        batch_size: int = 100,
        poll_interval: float = 2.0,
        publish_timeout: float = 5.0,
        max_backoff: float = 60.0,
        listen_url: str | URL | None = None,
    ) -> None:
        """`service` names the NOTIFY channel: it must be the `source` of the sessions writing events.
        `listen_url`: where the LISTEN connection goes, outside the pool (default: the engine's URL; a
        service behind PgBouncer gives its direct URL)."""
        self.engine = engine
        self.listen_url = listen_url or engine.url
        self.broker = broker
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._last_cleanup = 0.0
        self._last_lag = -LAG_INTERVAL
        self._last_batch = _Batch()
        # Passes completed (batch claimed, published, committed), for whoever must know that the relay
        # has looked at the outbox since some moment (tests, instead of sleeping).
        self.passes = 0

    def backoff(self, attempts: int) -> float:
        """Seconds before retrying a row that failed `attempts` times: 0.5, 1, 2, ... capped."""
        return float(min(self.max_backoff, 0.5 * 2 ** max(0, attempts - 1)))

    async def run(self) -> None:
        """Publish forever: woken by NOTIFY, polling as the safety net."""
        listener = asyncio.create_task(self._listen(), name=f"{self.service}-outbox-listen")
        try:
            while True:
                _check_cancelled()
                # Cleared before the pass: a NOTIFY arriving during it triggers another pass.
                self._wake.clear()
                try:
                    await self.publish_pending()
                    batch = self._last_batch
                    if batch.stopped is _Outcome.BROKER_LOST:
                        await asyncio.sleep(BROKER_LOST_PAUSE)
                        continue  # the next pass waits for the reconnection
                    if batch.claimed >= self.batch_size and batch.stopped is None:
                        continue  # a full batch: more rows may be due
                    await self._record_lag()
                    await self._cleanup()
                except asyncio.CancelledError:
                    raise
                except _CONNECTION_ERRORS as exc:
                    logger.warning("outbox relay: broker connection lost (%r); waiting for it", exc)
                except Exception:
                    logger.exception("outbox relay iteration failed")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):  # not wait_for (see _check_cancelled)
                        await self._wake.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def publish_pending(self) -> int:
        """Claim one batch of due rows and publish them; returns how many were confirmed.

        Waits for the broker connection first (blocks during an outage)."""
        exchange = await self.broker.events_exchange()
        self._last_batch = batch = _Batch()
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.type, outbox.c.envelope, outbox.c.attempts)
                    .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= func.now())
                    .order_by(outbox.c.created_at, outbox.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            batch.claimed = len(rows)
            published = []
            for row in rows:
                outcome = await self._publish_one(conn, exchange, row.id, row.type, row.envelope, row.attempts)
                if outcome is _Outcome.PUBLISHED:
                    published.append(row.id)
                elif outcome is not _Outcome.FAILED:
                    batch.stopped = outcome  # the rest of the batch stays as it is, unlocked at commit
                    break
            if published:
                # One statement for the batch, in its transaction: a crash before the commit leaves them
                # all unpublished (sent again: at-least-once), as one statement per row would.
                await conn.execute(
                    update(outbox).where(outbox.c.id.in_(published)).values(published_at=func.now(), last_error=None)
                )
                OUTBOX_PUBLISHED.labels(self.service).inc(len(published))
            batch.published = len(published)
        self.passes += 1
        return batch.published

    async def _publish_one(
        self, conn: AsyncConnection, exchange: Any, row_id: Any, type_: str, envelope: dict[str, Any], attempts: int
    ) -> _Outcome:
        message = aio_pika.Message(
            body=_dumps(envelope),
            content_type="application/cloudevents+json",
            message_id=str(row_id),
            type=type_,
            correlation_id=envelope.get("correlationid"),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"ce-source": envelope.get("source", ""), "ce-type": type_},
        )
        try:
            # Not mandatory: a type nobody subscribes to (yet) is dropped by the broker, not returned.
            await exchange.publish(message, routing_key=type_, mandatory=False, timeout=self.publish_timeout)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the relay itself is being stopped
            # aiormq cancels the pending confirm when its connection goes away.
            return self._broker_lost(type_, row_id, "confirm cancelled")
        except Exception as exc:
            if isinstance(exc, _CONNECTION_ERRORS) or not self.broker.is_connected:
                return self._broker_lost(type_, row_id, repr(exc))
            timed_out = isinstance(exc, TimeoutError)
            await self._record_failure(conn, type_, row_id, attempts, exc)
            return _Outcome.TIMED_OUT if timed_out else _Outcome.FAILED
        return _Outcome.PUBLISHED

    def _broker_lost(self, type_: str, row_id: Any, reason: str) -> _Outcome:
        # Possibly received by the broker all the same: published again later (at-least-once).
        logger.warning("publish of %s %s interrupted (%s); waiting for the broker", type_, row_id, reason)
        return _Outcome.BROKER_LOST

    async def _record_failure(
        self, conn: AsyncConnection, type_: str, row_id: Any, attempts: int, exc: Exception
    ) -> None:
        """A refused or unconfirmed publish: the row is retried after `backoff(attempts + 1)`."""
        OUTBOX_FAILURES.labels(self.service).inc()
        delay = self.backoff(attempts + 1)
        logger.warning("publish of %s %s failed (%r); retry in %.1fs", type_, row_id, exc, delay)
        await conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(
                attempts=outbox.c.attempts + 1,
                next_attempt_at=func.now() + timedelta(seconds=delay),
                last_error=f"{type(exc).__name__}: {exc}"[:500],
            )
        )

    async def _listen(self) -> None:
        """Hold a LISTEN connection of its own (`mif_common.listen`); reconnects after a database restart."""
        await listen(
            self.listen_url,
            {notify_channel(self.service): lambda _: self._wake.set()},
            application_name=f"mif-{self.service}-listen",
            # A commit notified before LISTEN was in place would otherwise wait for the poll.
            on_listening=self._wake.set,
        )

    async def _record_lag(self) -> None:
        """The pending-rows gauges, at most once per `LAG_INTERVAL` (a query per pass would cost as much
        as the publishing when every commit wakes the relay)."""
        if time.monotonic() - self._last_lag < LAG_INTERVAL:
            return
        self._last_lag = time.monotonic()
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(func.count(), func.extract("epoch", func.now() - func.min(outbox.c.created_at))).where(
                        outbox.c.published_at.is_(None)
                    )
                )
            ).one()
        OUTBOX_PENDING.labels(self.service).set(row[0])
        OUTBOX_LAG.labels(self.service).set(float(row[1] or 0))

    async def _cleanup(self) -> None:
        """Published rows are kept a week for inspection, then deleted (at most hourly)."""
        if time.monotonic() - self._last_cleanup < 3600:
            return
        self._last_cleanup = time.monotonic()
        async with self.engine.begin() as conn:
            await conn.execute(outbox.delete().where(outbox.c.published_at < func.now() - PUBLISHED_RETENTION))


def _dumps(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
