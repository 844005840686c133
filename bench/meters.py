"""Meters: reading ingestion through HTTP batches, and the downsampled history of a year of minute readings.

    .venv/bin/python bench/meters.py                          # 20 s of ingestion per concurrency, 525,600 rows
    .venv/bin/python bench/meters.py --seconds 5 --year-rows 52560 --requests 200   # a short first try

Runs here on loopback: a database `mif_bench_meters` made afresh (assets' role, schema and migrations), the
assets service (one uvicorn worker, background tasks off: the outbox rows are written, not relayed) behind
a gateway, and a stand-in for auth's JWKS (bench/support.py).

Ingestion: at each `--concurrency` (default 1, 2, 4), workers post batches of 1,000 readings
(`POST /api/v1/equipements/{id}/compteurs/{id}/releves`, one minute apart, a counter rising) for
`--seconds`, each worker on its own meter (a meter's batches are serialised by its lock), through the
gateway. Printed: readings per second, p50/p95 per batch, and CPU milliseconds per 1,000 readings of the
service, the gateway and PostgreSQL's backends (from /proc).

MQTT (`--mqtt-seconds`, 0 to skip): assets' MQTT ingestion worker (`python -m mif_assets.mqtt_worker`) on the
broker at 127.0.0.1:1883, fed by `--concurrency`'s largest number of publishers, one meter each, JSON lists of
100 readings per message (QoS 1) for `--mqtt-seconds`; the readings per second stored (from the first
message to the last reading in the database) and CPU per 1,000 readings of the worker and PostgreSQL.

History: one meter holding `--year-rows` minute readings (525,600: a year), loaded with SQL (INSERT ...
generate_series, then its hourly and daily rollups with INSERT ... SELECT ... GROUP BY, then VACUUM ANALYZE), then
`GET .../releves?pas=1h` (8,760 buckets) and `?pas=1d` (365) over the whole year at c=`--history-c`
(default 10), straight to the service and through the gateway: p50/p95 per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import aiomqtt
import asyncpg
from support import (  # bench/support.py, next to this script
    REPO,
    Build,
    Processes,
    add_admin_dsn,
    cpu_spent,
    database_dsn,
    percentile_ms,
    postgres_cpu,
    provision_databases,
    serve_jwks,
    start_build,
    tree_cpu_seconds,
    wait_ready,
)

DATABASE = "mif_bench_meters"
BATCH = 1000
YEAR_START = datetime(2024, 1, 1, tzinfo=UTC)
# Ingested readings are one minute apart from here (5 years: room for ~2,600 batches per meter).
INGEST_START = datetime(2019, 1, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def make_meters(dsn: str, count: int, year_rows: int) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """`count` equipment with a counter each for ingestion, and one with a gauge holding `year_rows` minute
    readings and their rollups."""
    conn = await asyncpg.connect(dsn)
    try:
        meters = []
        for n in range(count + 1):
            eid = await conn.fetchval(
                "INSERT INTO assets.equipement (nom, type, localisation) VALUES ($1, 'compresseur', 'Banc')"
                " RETURNING id",
                f"Banc {n} {uuid.uuid4().hex[:6]}",
            )
            code, nature = ("heures_marche", "compteur") if n < count else ("vibration", "jauge")
            cid = await conn.fetchval(
                "INSERT INTO assets.compteur (equipement_id, code, nom, nature, unite) VALUES ($1, $2, $2, $3, 'u')"
                " RETURNING id",
                eid,
                code,
                nature,
            )
            meters.append((int(eid), int(cid)))
        year = meters.pop()
        started = time.perf_counter()
        await conn.execute(
            "INSERT INTO assets.releve (compteur_id, horodatage, valeur, source)"
            " SELECT $1, $2::timestamptz + g * interval '1 minute', 5 + 2 * sin(g / 500.0) + (g % 7) / 10.0, 'api'"
            " FROM generate_series(0, $3::int - 1) AS g",
            year[1],
            YEAR_START,
            year_rows,
        )
        await conn.execute(
            "INSERT INTO assets.releve_horaire (compteur_id, heure, min, max, somme, nombre)"
            " SELECT compteur_id, date_trunc('hour', horodatage, 'UTC'), min(valeur), max(valeur), sum(valeur),"
            " count(*)"
            " FROM assets.releve WHERE compteur_id = $1 GROUP BY 1, 2",
            year[1],
        )
        # The daily rollups where the schema has them (a tree before migration 0003 of assets has not).
        if await conn.fetchval("SELECT to_regclass('assets.releve_jour') IS NOT NULL"):
            await conn.execute(
                "INSERT INTO assets.releve_jour (compteur_id, jour, min, max, somme, nombre)"
                " SELECT compteur_id, date_trunc('day', heure, 'UTC'), min(min), max(max), sum(somme), sum(nombre)"
                " FROM assets.releve_horaire WHERE compteur_id = $1 GROUP BY 1, 2",
                year[1],
            )
            await conn.execute("VACUUM ANALYZE assets.releve_jour")
        await conn.execute("VACUUM ANALYZE assets.releve")
        await conn.execute("VACUUM ANALYZE assets.releve_horaire")
        print(f"loaded {year_rows} readings and their rollups in {time.perf_counter() - started:.1f} s", flush=True)
    finally:
        await conn.close()
    return meters, year


async def ingestion(
    session: aiohttp.ClientSession,
    build: Build,
    token: str,
    meters: list[tuple[int, int]],
    clock: dict[int, datetime],
    seconds: float,
) -> tuple[int, list[float]]:
    """Each meter's worker posting batches until `seconds` have passed: (readings stored, batch latencies)."""
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    stored = 0
    deadline = time.monotonic() + seconds

    async def worker(eid: int, cid: int) -> None:
        nonlocal stored
        url = f"{build.base}/api/v1/equipements/{eid}/compteurs/{cid}/releves"
        while time.monotonic() < deadline:
            start = clock[cid]
            minute = (start - INGEST_START).total_seconds() / 60
            body = {
                "releves": [
                    {
                        "horodatage": iso(start + timedelta(minutes=i)),
                        "valeur": minute + i,
                    }
                    for i in range(BATCH)
                ],
                "source": "api",
            }
            clock[cid] = start + timedelta(minutes=BATCH)
            began = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as response:
                answer = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"{response.status}: {answer}")
            latencies.append(time.perf_counter() - began)
            stored += answer["acceptes"]

    await asyncio.gather(*(worker(eid, cid) for eid, cid in meters))
    return stored, latencies


MQTT_HOST, MQTT_PORT, PER_MESSAGE = "127.0.0.1", 1883, 100


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def mqtt_meters(dsn: str, count: int) -> list[tuple[int, int]]:
    """`count` equipment with a counter each, fed over MQTT only."""
    conn = await asyncpg.connect(dsn)
    try:
        meters = []
        for n in range(count):
            eid = await conn.fetchval(
                "INSERT INTO assets.equipement (nom, type, localisation) VALUES ($1, 'compresseur', 'Banc MQTT')"
                " RETURNING id",
                f"Banc MQTT {n} {uuid.uuid4().hex[:6]}",
            )
            cid = await conn.fetchval(
                "INSERT INTO assets.compteur (equipement_id, code, nom, nature, unite)"
                " VALUES ($1, 'heures_marche', 'heures', 'compteur', 'h') RETURNING id",
                eid,
            )
            meters.append((int(eid), int(cid)))
        return meters
    finally:
        await conn.close()


async def mqtt_ingestion(
    procs: Processes, admin_dsn: str, dsn: str, database_url: str, publishers: int, seconds: float
) -> None:
    """Publish readings over the real broker to the worker; print what it stored per second and its cost."""
    meters = await mqtt_meters(dsn, publishers)
    port = free_port()
    worker = procs.start(
        "assets-mqtt",
        [sys.executable, "-m", "mif_assets.mqtt_worker", "--port", str(port)],
        {
            "MIF_ASSETS_DATABASE_URL": database_url,
            "MIF_ASSETS_MQTT_HOST": MQTT_HOST,
            "MIF_ASSETS_MQTT_PORT": str(MQTT_PORT),
            "MIF_ASSETS_MQTT_CLIENT_ID": f"mif-bench-{uuid.uuid4().hex[:8]}",
            "MIF_ASSETS_LOG_LEVEL": "WARNING",
        },
    )
    await wait_ready(f"http://127.0.0.1:{port}/health/ready", worker)
    ids = [cid for _, cid in meters]
    conn = await asyncpg.connect(dsn)
    try:
        cpu_before, pg_before = tree_cpu_seconds(worker.pid), await postgres_cpu(admin_dsn, DATABASE)
        published = 0
        began = time.perf_counter()
        deadline = time.monotonic() + seconds

        async def publisher(eid: int) -> None:
            nonlocal published
            minute = 0
            async with aiomqtt.Client(
                MQTT_HOST, MQTT_PORT, identifier=f"mif-bench-pub-{uuid.uuid4().hex[:8]}"
            ) as client:
                while time.monotonic() < deadline:
                    readings = [
                        {"horodatage": iso(INGEST_START + timedelta(minutes=minute + i)), "valeur": minute + i}
                        for i in range(PER_MESSAGE)
                    ]
                    minute += PER_MESSAGE
                    await client.publish(f"mif/equipements/{eid}/heures_marche", json.dumps(readings), qos=1)
                    published += PER_MESSAGE

        await asyncio.gather(*(publisher(eid) for eid, _ in meters))
        stored, last_change, last_seen = 0, time.perf_counter(), -1
        while time.perf_counter() - last_change < 5 and stored < published:
            stored = int(await conn.fetchval("SELECT count(*) FROM assets.releve WHERE compteur_id = ANY($1)", ids))
            if stored != last_seen:
                last_seen, last_change = stored, time.perf_counter()
            await asyncio.sleep(0.2)
        elapsed = last_change - began
        svc = tree_cpu_seconds(worker.pid) - cpu_before
        pg = cpu_spent(pg_before, await postgres_cpu(admin_dsn, DATABASE))
        per = 1e6 / max(1, stored)
        print(
            f"\nMQTT: {publishers} publishers, {PER_MESSAGE} readings per message, {seconds:.0f} s:"
            f" published {published:,},"
            f" stored {stored:,} in {elapsed:.1f} s = {stored / elapsed:,.0f} readings/s; CPU ms per 1,000 readings:"
            f" worker {svc * per:.1f} / postgres {pg * per:.1f} / all {(svc + pg) * per:.1f}",
            flush=True,
        )
    finally:
        await conn.close()


async def history(session: aiohttp.ClientSession, base: str, token: str, path: str, c: int, total: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            began = time.perf_counter()
            async with session.get(base + path, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(worker() for _ in range(c)))
    return latencies


async def main(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mif_common.testing.keys import TestKeys

    urls = await provision_databases(args.admin_dsn, DATABASE, ["assets"])
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    meters, year = await make_meters(database_dsn(args.admin_dsn, DATABASE), max(concurrencies), args.year_rows)
    keys = TestKeys(Ed25519PrivateKey.generate(), kid=f"bench-{uuid.uuid4().hex[:8]}")
    token = keys.token("technicien", user_id=1, ttl=7200)
    runner, jwks_base = await serve_jwks(keys.jwks)
    procs = Processes("mif-bench-meters-")
    build = Build("meters", REPO, {})
    failed = True
    try:
        await start_build(build, procs, service="assets", database_url=urls["assets"], jwks_base=jwks_base, pool_size=5)
        assert build.service is not None
        assert build.gateway is not None
        argv = list(build.service.popen.args)  # type: ignore[arg-type]
        service_base = f"http://127.0.0.1:{argv[argv.index('--port') + 1]}"
        clock = {cid: INGEST_START for _, cid in meters}
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            await ingestion(session, build, token, meters[:1], clock, 2)  # warm-up
            print("\ningestion through the gateway, batches of 1,000 readings, one meter per worker:")
            print(
                "  c | readings/s | batch p50 / p95 ms | CPU ms per 1,000 readings: service / gateway / postgres / all"
            )
            for c in concurrencies:
                cpu_before = (tree_cpu_seconds(build.service.pid), tree_cpu_seconds(build.gateway.pid))
                pg_before = await postgres_cpu(args.admin_dsn, DATABASE)
                began = time.perf_counter()
                stored, latencies = await ingestion(session, build, token, meters[:c], clock, args.seconds)
                elapsed = time.perf_counter() - began
                pg = cpu_spent(pg_before, await postgres_cpu(args.admin_dsn, DATABASE))
                svc = tree_cpu_seconds(build.service.pid) - cpu_before[0]
                gw = tree_cpu_seconds(build.gateway.pid) - cpu_before[1]
                per = 1e6 / max(1, stored)  # seconds -> ms per 1,000 readings
                print(
                    f"{c:>3} | {stored / elapsed:>10,.0f} | {percentile_ms(latencies, 0.5):>7.1f} / "
                    f"{percentile_ms(latencies, 0.95):>6.1f}    | {svc * per:.1f} / {gw * per:.1f} / {pg * per:.1f} / "
                    f"{(svc + gw + pg) * per:.1f}",
                    flush=True,
                )
            if args.mqtt_seconds > 0:
                await mqtt_ingestion(
                    procs,
                    args.admin_dsn,
                    database_dsn(args.admin_dsn, DATABASE),
                    urls["assets"],
                    max(concurrencies),
                    args.mqtt_seconds,
                )
            eid, cid = year
            end = YEAR_START + timedelta(minutes=args.year_rows)
            window = f"depuis={iso(YEAR_START)}&jusqu_a={iso(end)}"
            print(
                f"\nhistory of {args.year_rows:,} minute readings, c={args.history_c}, {args.requests} requests each:"
            )
            print("  pas | via         | p50 ms | p95 ms | buckets")
            for pas in ("1h", "1d"):
                path = f"/api/v1/equipements/{eid}/compteurs/{cid}/releves?{window}&pas={pas}"
                for via, base in (("service", service_base), ("gateway", build.base)):
                    async with session.get(base + path, headers={"Authorization": f"Bearer {token}"}) as response:
                        buckets = len(await response.json())
                    await history(session, base, token, path, args.history_c, 50)  # warm-up
                    latencies = await history(session, base, token, path, args.history_c, args.requests)
                    print(
                        f"  {pas:>3} | {via:<11} | {percentile_ms(latencies, 0.5):>6.1f} | "
                        f"{percentile_ms(latencies, 0.95):>6.1f} | {buckets}",
                        flush=True,
                    )
        failed = False
    finally:
        procs.close(failed=failed)
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--year-rows", type=int, default=525_600)
    parser.add_argument("--mqtt-seconds", type=float, default=10, help="0: no MQTT ingestion")
    parser.add_argument("--history-c", type=int, default=10)
    parser.add_argument("--requests", type=int, default=1000)
    add_admin_dsn(parser)
    sys.exit(asyncio.run(main(parser.parse_args())))
