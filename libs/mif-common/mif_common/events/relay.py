"""The outbox relay: publishes committed outbox rows to RabbitMQ with publisher confirms.

Invariants (docs/adr/0001-events.md): rows are claimed with `FOR UPDATE SKIP LOCKED`, so several
replicas never publish the same row at once; a row is marked published only after the broker
confirmed it, so a crash between publish and mark re-publishes it (at-least-once; consumers dedupe on
the event id); a failing row backs off exponentially without blocking the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import timedelta
from typing import Any

import aio_pika
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mif_common.events.broker import Broker
from mif_common.events.outbox import notify_channel
from mif_common.events.tables import outbox
from mif_common.metrics import OUTBOX_FAILURES, OUTBOX_LAG, OUTBOX_PENDING, OUTBOX_PUBLISHED

logger = logging.getLogger(__name__)

PUBLISHED_RETENTION = timedelta(days=7)


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
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.service = service
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._last_cleanup = 0.0

    def backoff(self, attempts: int) -> float:
        """Seconds before retrying a row that failed `attempts` times: 0.5, 1, 2, ... capped."""
        return float(min(self.max_backoff, 0.5 * 2 ** max(0, attempts - 1)))

    async def run(self) -> None:
        """Publish forever: woken by NOTIFY, polling as the safety net."""
        listener = asyncio.create_task(self._listen(), name=f"{self.service}-outbox-listen")
        try:
            while True:
                try:
                    await self.broker.wait_connected()
                    published = await self.publish_pending()
                    if published >= self.batch_size:
                        continue
                    await self._record_lag()
                    await self._cleanup()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("outbox relay iteration failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
                self._wake.clear()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def publish_pending(self) -> int:
        """Claim one batch of due rows and publish them; returns how many were confirmed."""
        exchange = await self.broker.events_exchange()
        published = 0
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
            for row in rows:
                if await self._publish_one(conn, exchange, row.id, row.type, row.envelope, row.attempts):
                    published += 1
        return published

    async def _publish_one(
        self, conn: AsyncConnection, exchange: Any, row_id: Any, type_: str, envelope: dict[str, Any], attempts: int
    ) -> bool:
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
            await exchange.publish(message, routing_key=type_, timeout=self.publish_timeout)
        except Exception as exc:  # nack, timeout or channel loss: retry this row later
            OUTBOX_FAILURES.labels(self.service).inc()
            delay = self.backoff(attempts + 1)
            logger.warning("publish of %s %s failed (%s); retry in %.1fs", type_, row_id, exc, delay)
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(
                    attempts=outbox.c.attempts + 1,
                    next_attempt_at=func.now() + timedelta(seconds=delay),
                    last_error=f"{type(exc).__name__}: {exc}"[:500],
                )
            )
            return False
        await conn.execute(update(outbox).where(outbox.c.id == row_id).values(published_at=func.now(), last_error=None))
        OUTBOX_PUBLISHED.labels(self.service).inc()
        return True

    async def _listen(self) -> None:
        """Hold a LISTEN connection; reconnects after a database restart."""
        channel = notify_channel(self.service)
        while True:
            try:
                async with self.engine.connect() as conn:
                    raw = await conn.get_raw_connection()
                    driver = raw.driver_connection
                    assert driver is not None
                    lost = asyncio.Event()
                    driver.add_termination_listener(lambda *_, lost=lost: lost.set())
                    await driver.add_listener(channel, lambda *_: self._wake.set())
                    await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("outbox LISTEN connection lost (%s); polling until it is back", exc)
                await asyncio.sleep(2)

    async def _record_lag(self) -> None:
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
