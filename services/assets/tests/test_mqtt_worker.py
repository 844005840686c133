"""The MQTT ingestion worker against the real Mosquitto broker (127.0.0.1:1883) and the test database:
published readings are stored (one event per flush), bad messages are counted and never stop it, its
health answers, and what is buffered is stored when it stops."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomqtt
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mif_assets.config import AssetsSettings
from mif_assets.mqtt_payloads import MauvaisMessage, parse_payload, parse_topic
from mif_assets.mqtt_worker import IngestionWorker
from mif_common.config import ServiceSettings
from mif_common.db import make_engine
from mif_common.testing.mqtt import require_broker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _broker() -> None:
    require_broker()


@dataclass
class Running:
    worker: IngestionWorker
    engine: AsyncEngine
    health: str
    stop: asyncio.Event
    task: asyncio.Task[None]


@pytest.fixture
async def running(mif_settings: ServiceSettings) -> AsyncIterator[Running]:
    assert isinstance(mif_settings, AssetsSettings)
    port = free_port()
    settings = mif_settings.model_copy(
        update={
            "mqtt_client_id": f"mif-test-{uuid.uuid4().hex[:12]}",
            "mqtt_flush_seconds": 0.2,
            "mqtt_health_port": port,
        }
    )
    engine = make_engine(settings.database_url, schema="assets", pool_size=2)
    worker = IngestionWorker(settings, engine=make_engine(settings.database_url, schema="assets", pool_size=2))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.subscribed.wait(), timeout=10)
    yield Running(worker, engine, f"http://127.0.0.1:{port}", stop, task)
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    await engine.dispose()


async def committed_meter(engine: AsyncEngine, code: str, nature: str) -> tuple[int, int]:
    """An equipment and its meter, committed (the worker has its own connections)."""
    async with engine.begin() as conn:
        eid = (
            await conn.execute(
                text("INSERT INTO equipement (nom, type, localisation) VALUES (:n, 'capteur', 'Hall') RETURNING id"),
                {"n": f"Capteur {uuid.uuid4().hex}"},
            )
        ).scalar_one()
        cid = (
            await conn.execute(
                text(
                    "INSERT INTO compteur (equipement_id, code, nom, nature, unite) "
                    "VALUES (:e, :c, :c, :n, 'u') RETURNING id"
                ),
                {"e": eid, "c": code, "n": nature},
            )
        ).scalar_one()
    return int(eid), int(cid)


async def publish(*messages: tuple[str, bytes | str]) -> None:
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"mif-test-pub-{uuid.uuid4().hex[:8]}") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


async def readings(engine: AsyncEngine, cid: int, *, expect: int, wait: float = 10) -> list[tuple[float, str]]:
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT valeur, source FROM releve WHERE compteur_id = :c ORDER BY horodatage"), {"c": cid}
                )
            ).all()
        if len(rows) >= expect or asyncio.get_running_loop().time() > deadline:
            return [(float(r.valeur), r.source) for r in rows]
        await asyncio.sleep(0.1)


async def test_published_readings_are_stored_and_bad_messages_counted(running: Running) -> None:
    eid, cid = await committed_meter(running.engine, "vibration", "jauge")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    base = f"mif/equipements/{eid}/vibration"
    await publish(
        (base, "3.5"),
        (base, json.dumps({"valeur": 4.25, "horodatage": t0.isoformat()})),
        (base, json.dumps([{"valeur": 5, "horodatage": (t0 + timedelta(seconds=s)).isoformat()} for s in (1, 2)])),
        (base, b"\xff\xfe not a number"),
        (base, json.dumps({"valeur": "beaucoup"})),
        (base, json.dumps({"valeur": 1, "unite": "mm/s"})),
        (f"mif/equipements/{eid}/Vibration!", "1"),
        (f"mif/equipements/{eid}/inconnu", "1"),
    )
    stored = await readings(running.engine, cid, expect=4)
    assert sorted(stored) == [(3.5, "mqtt"), (4.25, "mqtt"), (5.0, "mqtt"), (5.0, "mqtt")]
    await asyncio.sleep(0.5)  # the unknown meter's flush
    stats = running.worker.stats
    assert stats["bad_payload"] == 3 and stats["bad_topic"] == 1
    assert stats["unknown_meter"] >= 1
    assert not running.task.done() and running.worker.is_connected

    async with httpx.AsyncClient(base_url=running.health) as http:
        assert (await http.get("/health/live")).status_code == 200
        ready = await http.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
        assert 'mif_mqtt_messages_total{outcome="bad_payload"}' in (await http.get("/metrics")).text

    # Still alive: the next reading is stored. Events: one per flush, summarising its readings.
    await publish((base, "6"))
    assert len(await readings(running.engine, cid, expect=5)) == 5
    async with running.engine.connect() as conn:
        events = (
            (
                await conn.execute(
                    text("SELECT envelope FROM outbox WHERE subject = :s AND type = 'assets.releves.recorded.v1'"),
                    {"s": str(cid)},
                )
            )
            .scalars()
            .all()
        )
    assert sum(e["data"]["nombre"] for e in events) == 5
    assert all(e["data"]["source"] == "mqtt" for e in events)
    assert len(events) <= 3


async def test_a_refused_counter_reading_is_dropped_alone(running: Running) -> None:
    eid, cid = await committed_meter(running.engine, "heures_marche", "compteur")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    series = [(0, 10), (1, 11), (2, 9), (3, 12), (4, 1, True), (5, 2)]
    payload = [
        {"valeur": v, "horodatage": (t0 + timedelta(minutes=m)).isoformat(), "remise_a_zero": bool(rest)}
        for m, v, *rest in series
    ]
    await publish((f"mif/equipements/{eid}/heures_marche", json.dumps(payload)))
    stored = await readings(running.engine, cid, expect=5)
    assert [v for v, _ in stored] == [10, 11, 12, 1, 2]
    assert running.worker.stats["refused"] == 1


async def test_buffered_readings_are_stored_when_the_worker_stops(running: Running) -> None:
    eid, cid = await committed_meter(running.engine, "pression", "jauge")
    running.worker.receive(f"mif/equipements/{eid}/pression", b"2.5", datetime.now(UTC))
    running.stop.set()
    await asyncio.wait_for(running.task, timeout=10)
    assert await readings(running.engine, cid, expect=1, wait=0) == [(2.5, "mqtt")]


def test_topics_and_payloads() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_topic("mif/equipements/12/heures_marche") == (12, "heures_marche")
    bad_topics = ["mif/equipements/0/x", "mif/equipements/a/x", "mif/equipements/1", "mif/x/1/y", "mif/equipements/1/X"]
    for topic in bad_topics:
        with pytest.raises(MauvaisMessage):
            parse_topic(topic)
    assert [(x.horodatage, x.valeur) for x in parse_payload(b" 12.5\n", now)] == [(now, 12.5)]
    one = parse_payload(b'{"valeur": 3, "horodatage": "2024-06-01T10:00:00", "remise_a_zero": true}', now)[0]
    assert (one.horodatage, one.valeur, one.remise_a_zero) == (datetime(2024, 6, 1, 10, tzinfo=UTC), 3.0, True)
    for bad in [b"nan", b"inf", b"", b"[]", b"{}", b'"3"', b"[1, 2]", b"1e400", b'{"valeur": true}', b"[" + b"{}," * 3]:
        with pytest.raises(MauvaisMessage):
            parse_payload(bad, now)
    with pytest.raises(MauvaisMessage):
        parse_payload(json.dumps([{"valeur": 1}] * 1001).encode(), now)
