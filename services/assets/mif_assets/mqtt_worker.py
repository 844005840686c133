"""The MQTT ingestion worker: `python -m mif_assets.mqtt_worker` (docs/assets.md, "MQTT ingestion").

It subscribes to `mif/equipements/+/+` on the broker (QoS 1, a persistent session), buffers the readings
per meter and, every `mqtt_flush_seconds` or as soon as a meter holds 1,000 readings, stores each
meter's through the same `releves.ingest` as the HTTP batches (source `mqtt`): one transaction and one
`assets.releves.recorded.v1` per meter and flush. The assets service's outbox relay publishes the
events (the worker writes the outbox table; any assets replica relays it).

Nothing a device sends stops it: a bad topic or payload, an unknown meter, a counter reading refused
(dropped alone, the rest of the flush is stored) are counted (`/metrics`: `mif_mqtt_*`) and logged. A
broker that goes away is reconnected to with a growing delay; readings wait in memory while the database
is unreachable (at most `mqtt_max_buffered` per meter). Its own HTTP server answers `/health/live`,
`/health/ready` (database and broker) and `/metrics` on `mqtt_health_port`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import aiomqtt
import uvicorn
from fastapi import FastAPI
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from mif_assets import releves_repository as repo
from mif_assets.compteurs_schemas import MAX_RELEVES
from mif_assets.config import AssetsSettings
from mif_assets.models import SourceReleve
from mif_assets.mqtt_payloads import MauvaisMessage, parse_payload, parse_topic
from mif_assets.releves import Lecture, ReleveRefuse, ingest
from mif_common.db import make_sessionmaker, service_engine
from mif_common.health import router as health_router
from mif_common.logging import configure_logging
from mif_common.metrics import metrics_endpoint

logger = logging.getLogger("mif_assets.mqtt_worker")

MESSAGES = PromCounter("mif_mqtt_messages_total", "MQTT messages received, by outcome", ["outcome"])
READINGS = PromCounter("mif_mqtt_readings_total", "Readings received over MQTT, by outcome", ["outcome"])
CONNECTED = Gauge("mif_mqtt_connected", "1 while the ingestion worker is connected to the broker")

Key = tuple[int, str]  # (equipement_id, code)


class IngestionWorker:
    def __init__(self, settings: AssetsSettings, *, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or service_engine(settings)
        self.sessionmaker = make_sessionmaker(self.engine, source=settings.service_name, settings=settings)
        self.buffers: dict[Key, list[Lecture]] = {}
        self.stats: Counter[str] = Counter()  # the counters, also readable in process (tests)
        self.is_connected = False  # read by mif_common.health as the "broker" check
        self._full = asyncio.Event()
        self.subscribed = asyncio.Event()

    def _count(self, outcome: str, n: int = 1, *, readings: bool = True) -> None:
        self.stats[outcome] += n
        (READINGS if readings else MESSAGES).labels(outcome).inc(n)

    # --- receiving ------------------------------------------------------------------------------

    def receive(self, topic: str, payload: bytes, received: datetime) -> None:
        """Buffer the readings of one message; a message the worker cannot read is counted and logged."""
        try:
            key = parse_topic(topic)
            lectures = parse_payload(payload, received)
        except MauvaisMessage as exc:
            self._count(f"bad_{exc.raison}", readings=False)
            logger.warning("MQTT message on %r ignored: %s", topic[:200], exc)
            return
        self._count("received", readings=False)
        buffer = self.buffers.setdefault(key, [])
        buffer.extend(lectures)
        if len(buffer) >= MAX_RELEVES:
            self._full.set()

    async def listen(self) -> None:
        """Subscribe and receive until cancelled, reconnecting with a growing delay."""
        settings = self.settings
        delay = 1.0
        while True:
            try:
                async with aiomqtt.Client(
                    settings.mqtt_host,
                    settings.mqtt_port,
                    identifier=settings.mqtt_client_id,
                    clean_session=False,
                    username=settings.mqtt_username or None,
                    password=settings.mqtt_password.get_secret_value() or None,
                    keepalive=30,
                ) as client:
                    await client.subscribe(settings.mqtt_topic, qos=1)
                    self.is_connected = True
                    CONNECTED.set(1)
                    self.subscribed.set()
                    logger.info(
                        "MQTT: subscribed to %s on %s:%s", settings.mqtt_topic, settings.mqtt_host, settings.mqtt_port
                    )
                    delay = 1.0
                    async for message in client.messages:
                        payload = message.payload
                        raw = payload if isinstance(payload, bytes | bytearray) else str(payload or "").encode()
                        self.receive(message.topic.value, bytes(raw), datetime.now(UTC))
            except aiomqtt.MqttError as exc:
                logger.warning("MQTT broker unreachable (%s); retrying in %.0f s", exc, delay)
            finally:
                self.is_connected = False
                CONNECTED.set(0)
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.mqtt_max_backoff_seconds)

    # --- storing --------------------------------------------------------------------------------

    async def flush_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), timeout=self.settings.mqtt_flush_seconds)
            self._full.clear()
            await self.flush()

    async def flush(self) -> None:
        """Store every buffered reading, 1,000 at most per meter and transaction."""
        buffers, self.buffers = self.buffers, {}
        for key, lectures in buffers.items():
            for start in range(0, len(lectures), MAX_RELEVES):
                if not await self._store(key, lectures[start : start + MAX_RELEVES]):
                    self._requeue(key, lectures[start:])
                    break

    def _requeue(self, key: Key, lectures: list[Lecture]) -> None:
        buffer = lectures + self.buffers.get(key, [])
        excess = len(buffer) - self.settings.mqtt_max_buffered
        if excess > 0:
            self._count("dropped", excess)
            logger.error("MQTT: %d readings of %s dropped: the database has been unreachable too long", excess, key)
            buffer = buffer[excess:]
        self.buffers[key] = buffer

    async def _store(self, key: Key, lectures: list[Lecture]) -> bool:
        """Store one chunk; False when the database failed (the chunk is to be kept)."""
        equipement_id, code = key
        while lectures:
            try:
                async with self.sessionmaker() as session, session.begin():
                    compteur = await repo.lock_compteur_by_code(session, equipement_id=equipement_id, code=code)
                    if compteur is None:
                        self._count("unknown_meter", len(lectures))
                        logger.warning(
                            "MQTT: %d readings for unknown meter %r of equipment %s", len(lectures), code, equipement_id
                        )
                        return True
                    result = await ingest(session, compteur, lectures, SourceReleve.mqtt.value)
            except ReleveRefuse as refused:
                self._count("refused")
                logger.warning("MQTT: reading of %r on equipment %s refused: %s", code, equipement_id, refused.detail)
                lectures = lectures[: refused.index] + lectures[refused.index + 1 :]
                continue
            except Exception:
                logger.exception("MQTT: storing %d readings of %s failed; kept for the next flush", len(lectures), key)
                return False
            self._count("stored", result.acceptes)
            self._count("duplicate", result.doublons)
            return True
        return True

    # --- running --------------------------------------------------------------------------------

    def health_app(self) -> FastAPI:
        app = FastAPI(title="MIF assets MQTT ingestion", docs_url=None, redoc_url=None, openapi_url=None)
        app.state.engine = self.engine
        app.state.broker = self  # `is_connected`
        app.include_router(health_router)
        app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
        return app

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set; then what is buffered is stored before returning."""
        config = uvicorn.Config(
            self.health_app(),
            host=self.settings.mqtt_health_host,
            port=self.settings.mqtt_health_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = _Server(config)
        tasks = [
            asyncio.create_task(self.listen(), name="mqtt-listen"),
            asyncio.create_task(self.flush_forever(), name="mqtt-flush"),
            asyncio.create_task(server.serve(), name="mqtt-health"),
        ]
        try:
            await stop.wait()
        finally:
            tasks[0].cancel()
            tasks[1].cancel()
            for task in tasks[:2]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.flush()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await tasks[2]
            await self.engine.dispose()


class _Server(uvicorn.Server):
    """The health server, leaving signals to the worker (which stores its buffers before exiting)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mif_assets.mqtt_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, help="health port (default: MIF_ASSETS_MQTT_HEALTH_PORT, 8017)")
    args = parser.parse_args(argv)
    settings = AssetsSettings()
    if args.port is not None:
        settings = settings.model_copy(update={"mqtt_health_port": args.port})
    configure_logging("assets-mqtt", level=settings.log_level, json=settings.log_json)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await IngestionWorker(settings).run(stop)


if __name__ == "__main__":
    asyncio.run(_main())
