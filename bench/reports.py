"""The reports service under two years of 100,000 interventions loaded through events: KPI queries at c=10,
a 100,000-row XLSX and a monthly PDF as jobs, the service's peak RSS meanwhile.

    .venv/bin/python bench/reports.py                                   # 100,000 interventions, 10 s per KPI
    .venv/bin/python bench/reports.py --interventions 5000 --seconds 3  # a short first try
    .venv/bin/python bench/reports.py --via direct --json out.json
    .venv/bin/python bench/reports.py --reuse --exports ''            # the KPIs again, on the last run's data

Runs here on loopback: a database `mif_bench_reports` made afresh by `python -m mif_common.cli setup`
(every service's schema, as `make run` does), a RabbitMQ vhost of its own (deleted at the end; the queues
setup declares for the other services are deleted at once, nobody consumes them here), and only the
reports service (one uvicorn worker, its defaults otherwise) plus, unless `--via direct`, a gateway in
front of it. No auth service: tokens are signed with an Ed25519 key this script serves as the JWKS (with
auth's token states: every user active), a manager's (`responsable`) for every request.

Loaded through the broker, as the owners publish them (`mif.events`, routing key = type, the envelope of
their outbox relays; `data` from the owners' test helpers, checked against their payload models): 20
clients, 40 technicians, 300 equipment (`created`), then in time order over the last two years the life
of `--interventions` interventions (`created`, `assigned`, `started`, `paused`, `closed`, `cancelled`,
`archived`, each carrying the snapshot with `date_creation`, `date_limite`, `date_debut_travaux`,
`date_cloture`, `duree_reelle`), assets' `status_changed` to `panne` and back for the urgent and high
correctives (overlapping breakdowns of one equipment merged, as assets only publishes real changes), and
inventory's `parts_costed` (some with a second version). The publishers stay at most `--backlog` messages
ahead of the consumer (quorum queue depth). Printed: events/s from the first publish until the service's
inbox holds every event, and CPU per 1,000 events (reports, its PostgreSQL backends, RabbitMQ).

Then at `--concurrency` (10) as a manager, one round of `--seconds` per KPI and target (direct, gateway),
over two years (`du` two years ago, `au` today, `pas=mois`), the filters cycling request by request (none,
`client_id`, `type_equipement`, `technicien_id`): p50/p95/p99, req/s, CPU ms per request (reports with
its PostgreSQL backends; the gateway apart). Last, an XLSX of the interventions of the two years and the
monthly PDF of the busiest client's busiest complete month, both as jobs (202, polled, fetched through
the signed link): seconds, size, pages (pypdf), and the reports process's RSS sampled every 50 ms
(`VmHWM` reset before each through /proc/<pid>/clear_refs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg
from support import (  # bench/support.py, next to this script
    PYTHON,
    REPO,
    Processes,
    add_admin_dsn,
    cpu_seconds,
    cpu_spent,
    database_dsn,
    free_port,
    percentile_ms,
    postgres_cpu,
    serve_jwks,
    tree_cpu_seconds,
    wait_ready,
)
from workflow_throughput import rabbitmq_pid

DATABASE = "mif_bench_reports"
QUEUE = "mif.reports"
CLIENTS, TECHNICIANS, EQUIPMENT = 20, 40, 300
DAYS = 730
KPIS: list[tuple[str, dict[str, str]]] = [
    ("mttr", {}),
    ("sla", {}),
    ("backlog", {}),
    ("conformite-preventive", {}),
    ("premiere-resolution", {}),
    ("utilisation", {}),
    ("couts", {"par": "client"}),
    ("mtbf", {}),
]
FILTERS = ("none", "client_id", "type_equipement", "technicien_id")
EQUIPMENT_TYPES = ("compresseur", "pompe", "groupe electrogene", "climatisation", "convoyeur", "chaudiere",
                   "ascenseur", "transformateur")  # fmt: skip
CITIES = ("Casablanca", "Rabat", "Tanger", "Marrakech", "Fès", "Agadir", "Kénitra", "Mohammedia")
TYPES = (("corrective", 55), ("preventive", 30), ("ameliorative", 8), ("diagnostic", 7))
PRIORITIES = {
    "corrective": (("urgente", 10), ("haute", 25), ("normale", 45), ("basse", 20)),
    "preventive": (("programmee", 70), ("normale", 30)),
    "ameliorative": (("normale", 60), ("basse", 30), ("haute", 10)),
    "diagnostic": (("normale", 60), ("basse", 30), ("haute", 10)),
}
# Deadline after creation by priority (hours), and the mean wait from assignment to the start of work.
DEADLINE_H = {"urgente": 4, "haute": 24, "normale": 72, "basse": 168}
START_WAIT_H = {"urgente": 1, "haute": 8, "normale": 30, "basse": 80}
VERB_STATUT = {"created": "ouverte", "assigned": "affectee", "started": "en_cours", "paused": "en_attente",
               "closed": "cloturee", "cancelled": "annulee", "archived": "archivee"}  # fmt: skip
TITRES = ("Fuite d'huile", "Vibration anormale", "Arrêt sur défaut", "Révision périodique", "Graissage",
          "Contrôle sécurité", "Remplacement courroie", "Bruit roulement", "Surchauffe moteur",
          "Calibration")  # fmt: skip


# --- the data set ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Intervention:
    id: int
    equipement: int
    client: int
    type: str
    priorite: str
    titre: str
    created: datetime
    deadline: datetime | None
    technicien: int | None = None
    steps: list[tuple[datetime, str]] = field(default_factory=list)
    debut: datetime | None = None
    cloture: datetime | None = None
    duree: int | None = None


@dataclass
class DataSet:
    now: datetime
    equipment_client: list[int]  # index: equipment id - 1
    equipment_type: list[str]
    interventions: list[Intervention]
    statuts: dict[int, list[tuple[datetime, str, str]]]  # equipment: (at, statut, ancien), in time order
    parts: list[tuple[datetime, int, int, int]]  # (at, intervention, version, cost)

    def timeline(self) -> list[tuple[float, int, int, int]]:
        """Every dated event as (time, kind, id, step), in time order: 0 an intervention's step, 1 an
        equipment's statut change, 2 a parts cost."""
        out: list[tuple[float, int, int, int]] = []
        for i in self.interventions:
            out.extend((at.timestamp(), 0, i.id, k) for k, (at, _) in enumerate(i.steps))
        for e, changes in self.statuts.items():
            out.extend((at.timestamp(), 1, e, k) for k, (at, _, _) in enumerate(changes))
        out.extend((at.timestamp(), 2, n, 0) for n, (at, _, _, _) in enumerate(self.parts))
        out.sort()
        return out


def weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def generate(n: int, seed: int = 2026) -> DataSet:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=DAYS)
    # Clients of uneven size (the first the busiest), each equipment belonging to one.
    client_weights = [1 / (k**0.9) for k in range(1, CLIENTS + 1)]
    equipment_client = rng.choices(range(1, CLIENTS + 1), client_weights, k=EQUIPMENT)
    equipment_client[:CLIENTS] = range(1, CLIENTS + 1)  # every client has equipment
    equipment_type = [EQUIPMENT_TYPES[rng.randrange(len(EQUIPMENT_TYPES))] for _ in range(EQUIPMENT)]
    # Busier equipment too (older machines break more).
    equipment_weights = [rng.uniform(0.3, 2.0) for _ in range(EQUIPMENT)]
    breakdowns: dict[int, list[tuple[datetime, datetime | None]]] = {}
    parts: list[tuple[datetime, int, int, int]] = []
    interventions = []
    for iid in range(1, n + 1):
        e = rng.choices(range(1, EQUIPMENT + 1), equipment_weights)[0]
        type_ = weighted(rng, TYPES)
        priorite = weighted(rng, PRIORITIES[type_])
        day = start + timedelta(days=rng.uniform(0, DAYS - 0.05))
        created = min(day.replace(hour=rng.choice((7, 8, 9, 10, 11, 13, 14, 15, 16, 17))), now - timedelta(hours=1))
        created += timedelta(seconds=rng.randrange(3600))
        created = min(created, now - timedelta(minutes=30))
        if type_ == "preventive":
            deadline: datetime | None = created + timedelta(days=rng.choice((7, 14, 30)))
        elif type_ == "corrective":
            deadline = created + timedelta(hours=DEADLINE_H[priorite])
        else:
            deadline = created + timedelta(days=14) if rng.random() < 0.5 else None
        i = Intervention(iid, e, equipment_client[e - 1], type_, priorite, rng.choice(TITRES), created, deadline)
        i.steps.append((created, "created"))
        age = now - created
        fate = rng.random()
        if age < timedelta(days=14) and fate < 0.5:
            fate = 2.0  # a recent one still open
        tech = rng.randint(1, TECHNICIANS)
        assigned = created + timedelta(minutes=rng.uniform(5, 30 if priorite == "urgente" else 240))
        if 0.87 <= fate < 0.93:  # cancelled
            if rng.random() < 0.5 and assigned < now:
                i.technicien = tech
                i.steps.append((assigned, "assigned"))
            cancelled = min(created + timedelta(hours=rng.uniform(1, 120)), now - timedelta(minutes=1))
            i.steps.append((max(cancelled, i.steps[-1][0] + timedelta(seconds=1)), "cancelled"))
        else:
            if assigned < now:
                i.technicien = tech
                i.steps.append((assigned, "assigned"))
            if type_ == "preventive" and deadline is not None:
                begin = deadline - timedelta(days=rng.uniform(-1.5, 5))  # a few late
            else:
                begin = assigned + timedelta(hours=rng.expovariate(1 / START_WAIT_H.get(priorite, 24)))
            begin = max(begin, assigned + timedelta(minutes=1))
            work = timedelta(minutes=max(15.0, min(rng.expovariate(1 / 180), 4320)))
            end = begin + work
            still_open = fate >= 0.97 and fate < 2.0
            if begin < now and i.technicien is not None:
                i.steps.append((begin, "started"))
                i.debut = begin
                if (still_open or end >= now) and begin + work / 3 < now and rng.random() < 0.6:
                    i.steps.append((begin + work / 3, "paused"))
                elif end < now and not still_open and fate < 2.0:
                    i.cloture, i.duree = end, int(work.total_seconds() / 60 * rng.uniform(0.6, 1.0))
                    i.steps.append((end, "closed"))
                    archived = end + timedelta(days=rng.uniform(30, 120))
                    if 0.93 <= fate < 0.97 and archived < now:
                        i.steps.append((archived, "archived"))
                    if rng.random() < (0.35 if type_ == "corrective" else 0.5 if type_ == "preventive" else 0.15):
                        at = begin + work * rng.uniform(0.2, 0.9)
                        parts.append((at, iid, 1, rng.randint(5_000, 500_000)))
                        if rng.random() < 0.1 and end + timedelta(minutes=30) < now:
                            parts.append((end + timedelta(minutes=30), iid, 2, rng.randint(1_000, 5_000)))
        if type_ == "corrective" and priorite in ("urgente", "haute"):
            # Down from the call until the closure (or the cancellation); one still open is down only if
            # recent (an old one left open was worked around).
            last_at, last_verb = i.steps[-1]
            up_at = i.cloture or (last_at if last_verb == "cancelled" else None)
            if up_at is not None or age < timedelta(days=14):
                breakdowns.setdefault(e, []).append((created, up_at))
        interventions.append(i)
    statuts: dict[int, list[tuple[datetime, str, str]]] = {}
    for e, spans in breakdowns.items():
        changes: list[tuple[datetime, str, str]] = []
        down_until: datetime | None = None  # None: up
        for begin, end in sorted(spans, key=lambda s: s[0]):
            if down_until is not None and begin <= down_until:
                down_until = max(down_until, end or now + timedelta(days=1))
                continue
            if down_until is not None and down_until < now:
                changes.append((down_until, "operationnel", "panne"))
            changes.append((begin, "panne", "operationnel"))
            down_until = end or now + timedelta(days=1)
        if down_until is not None and down_until < now:
            changes.append((down_until, "operationnel", "panne"))
        statuts[e] = changes
    return DataSet(now, equipment_client, equipment_type, interventions, statuts, parts)


# --- the events, as their owners publish them ------------------------------------------------------


def setup_events(ds: DataSet) -> list[tuple[str, dict[str, Any]]]:
    from mif_assets.testing import client_data, equipement_data
    from mif_planning.testing import technicien_data

    at = ds.now - timedelta(days=DAYS + 1)
    events = [
        ("assets.client.created.v1",
         client_data(c, nom_entreprise=f"Société {c:02d}", ville=CITIES[c % len(CITIES)], updated_at=at))
        for c in range(1, CLIENTS + 1)
    ]  # fmt: skip
    events += [
        ("planning.technicien.created.v1",
         technicien_data(t, 5000 + t, full_name=f"Technicien {t:02d}", occurred_at=at))
        for t in range(1, TECHNICIANS + 1)
    ]  # fmt: skip
    events += [
        (
            "assets.equipement.created.v1",
            equipement_data(
                e,
                nom=f"{ds.equipment_type[e - 1].capitalize()} {e:03d}",
                type=ds.equipment_type[e - 1],
                localisation=f"Site {ds.equipment_client[e - 1]:02d} - atelier {e % 4}",
                client_id=ds.equipment_client[e - 1],
                updated_at=at,
            ),
        )
        for e in range(1, EQUIPMENT + 1)
    ]
    return events


def dated_event(ds: DataSet, kind: int, ident: int, step: int) -> tuple[str, dict[str, Any]]:
    from mif_assets.testing import equipement_data
    from mif_interventions.testing import intervention_data
    from mif_inventory.testing import parts_costed_data

    if kind == 0:
        i = ds.interventions[ident - 1]
        at, verb = i.steps[step]
        done = {v for _, v in i.steps[: step + 1]}
        statut = VERB_STATUT[verb]
        previous = VERB_STATUT[i.steps[step - 1][1]] if step else None
        closed = "closed" in done
        data = intervention_data(
            i.id,
            statut,
            equipement_id=i.equipement,
            priorite=i.priorite,
            occurred_at=at,
            client_id=i.client,
            technicien_id=i.technicien if "assigned" in done else None,
            previous_statut=previous,
            type=i.type,
            titre=f"{i.titre} - {i.type} n°{i.id}",
            actor_id=1,
            date_creation=i.created,
            date_limite=i.deadline,
            date_debut_travaux=i.debut if "started" in done else None,
            date_cloture=i.cloture if closed else None,
            duree_reelle=i.duree if closed else None,
        )
        return f"interventions.intervention.{verb}.v1", data
    if kind == 1:
        at, statut, ancien = ds.statuts[ident][step]
        data = equipement_data(
            ident,
            statut=statut,
            version=step + 2,  # `created` was version 1
            updated_at=at,
            nom=f"{ds.equipment_type[ident - 1].capitalize()} {ident:03d}",
            type=ds.equipment_type[ident - 1],
            localisation=f"Site {ds.equipment_client[ident - 1]:02d} - atelier {ident % 4}",
            client_id=ds.equipment_client[ident - 1],
            ancien_statut=ancien,
        )
        return "assets.equipement.status_changed.v1", data
    at, iid, version, cost = ds.parts[ident]
    return "inventory.intervention.parts_costed.v1", parts_costed_data(
        iid, cout_pieces=cost, version=version, occurred_at=at
    )


def message(event_type: str, data: dict[str, Any], at: datetime | None = None) -> aio_pika.Message:
    """The message an owner's outbox relay sends (mif_common.events.relay)."""
    from mif_common.testing.events import envelope

    one = envelope(event_type, data, **({"time": at} if at else {}))
    return aio_pika.Message(
        one.model_dump_json().encode(),
        content_type="application/cloudevents+json",
        message_id=str(uuid.uuid4()),
        type=event_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={"ce-source": one.source, "ce-type": event_type},
    )


async def queue_depth(channel: aio_pika.abc.AbstractChannel) -> int:
    queue = await channel.declare_queue(QUEUE, passive=True)
    return int(queue.declaration_result.message_count or 0)


async def inbox_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM reports.inbox"))


async def publish_all(
    amqp_url: str, ds: DataSet, timeline: list[tuple[float, int, int, int]], publishers: int, backlog: int
) -> None:
    """The dated events in time order, by `publishers` channels with confirms, at most `backlog` ahead."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        control = await connection.channel()
        position = iter(range(len(timeline)))
        lock = asyncio.Lock()

        async def publisher() -> None:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange("mif.events")
            for n in position:
                if n % 2000 == 0 and n:
                    async with lock:
                        while await queue_depth(control) > backlog:  # noqa: ASYNC110 - polling the broker
                            await asyncio.sleep(0.2)
                _, kind, ident, step = timeline[n]
                event_type, data = dated_event(ds, kind, ident, step)
                await exchange.publish(message(event_type, data), routing_key=event_type)

        await asyncio.gather(*(publisher() for _ in range(publishers)))


# --- the processes ---------------------------------------------------------------------------------


async def start(procs: Processes, args: argparse.Namespace, amqp_url: str, jwks_base: str) -> dict[str, Any]:
    """The database (setup), the reports service and, unless `--via direct`, a gateway; their URLs and pids."""
    from mif_common.events.topology import consumer_queue_name
    from mif_common.provision import service_database_url
    from mif_common.suite import ALL_SERVICES, built_services, service

    if not args.reuse:
        conn = await asyncpg.connect(args.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        finally:
            await conn.close()
    env = {
        "MIF_ENVIRONMENT": "development",
        "MIF_LOG_LEVEL": "WARNING",
        "MIF_ADMIN_DSN": args.admin_dsn,
        "MIF_DATABASE_NAME": DATABASE,
        "MIF_AMQP_URL": amqp_url,
    }
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [PYTHON, "-m", "mif_common.cli", "setup"],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"setup failed:\n{done.stdout}\n{done.stderr}")
    print(f"    setup in {time.monotonic() - started:.0f} s", flush=True)
    # Only reports consumes here: the other services' queues would keep a copy of every event.
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        for svc in built_services():
            if svc.name != "reports":
                with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                    await channel.queue_delete(consumer_queue_name(svc.name))
                channel = await connection.channel() if channel.is_closed else channel
    port = free_port()
    exports_dir = procs.tmp / "exports"
    reports = procs.uvicorn(
        "reports",
        "mif_reports.main:create_app",
        port,
        {
            **env,
            "MIF_REPORTS_DATABASE_URL": service_database_url(args.admin_dsn, DATABASE, service("reports")),
            "MIF_REPORTS_JWKS_URL": f"{jwks_base}/api/v1/auth/.well-known/jwks.json",
            "MIF_REPORTS_AUTH_URL": jwks_base,  # the token states of the bench's users
            "MIF_REPORTS_EXPORTS_DIR": str(exports_dir),
            "MIF_REPORTS_JOB_POLL_INTERVAL_SECONDS": "0.2",
            "MIF_REPORTS_LOG_LEVEL": "WARNING",
        },
    )
    url = f"http://127.0.0.1:{port}"
    await wait_ready(f"{url}/health/live", reports, limit=120)
    out: dict[str, Any] = {"reports": url, "pids": {"reports": reports.pid}, "exports_dir": exports_dir}
    if "gateway" in args.via:
        gateway_port = free_port()
        dead = f"http://127.0.0.1:{free_port()}"
        upstreams = {s.name: dead for s in ALL_SERVICES} | {"auth": jwks_base, "reports": url}
        gateway = procs.uvicorn(
            "gateway",
            "mif_gateway.main:create_app",
            gateway_port,
            {
                "MIF_GATEWAY_UPSTREAMS": json.dumps(upstreams),
                "MIF_GATEWAY_LOG_LEVEL": "WARNING",
                "MIF_GATEWAY_BACKGROUND_TASKS": "false",
                "MIF_GATEWAY_REVOCATION_ENABLED": "false",
                "MIF_GATEWAY_RATE_LIMIT_ENABLED": "false",
                "MIF_GATEWAY_RATE_USER_PER_WINDOW": "100000000",
                "MIF_GATEWAY_RATE_ANONYMOUS_PER_WINDOW": "100000000",
            },
        )
        out["gateway"] = f"http://127.0.0.1:{gateway_port}"
        out["pids"]["gateway"] = gateway.pid
        await wait_ready(f"{out['gateway']}/health/live", gateway)
    return out


# --- the load through events -----------------------------------------------------------------------


async def load_events(args: argparse.Namespace, amqp_url: str, reports_pid: int) -> tuple[DataSet, dict[str, Any]]:
    started = time.monotonic()
    ds = generate(args.interventions)
    timeline = ds.timeline()
    print(
        f"    generated {len(ds.interventions):,} interventions, {len(timeline):,} dated events "
        f"({sum(len(c) for c in ds.statuts.values()):,} statut changes, {len(ds.parts):,} parts costs) "
        f"in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    conn = await asyncpg.connect(database_dsn(args.admin_dsn, DATABASE))
    try:
        setup = setup_events(ds)
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange("mif.events")
            for event_type, data in setup:
                await exchange.publish(message(event_type, data), routing_key=event_type)
        while await inbox_count(conn) < len(setup):  # noqa: ASYNC110 - polling the database
            await asyncio.sleep(0.2)
        total = len(setup) + len(timeline)
        mq = rabbitmq_pid()
        cpu_before = tree_cpu_seconds(reports_pid), cpu_seconds(mq), cpu_seconds(os.getpid())
        pg_before = await postgres_cpu(args.admin_dsn, DATABASE)
        started = time.monotonic()
        publishing = asyncio.create_task(publish_all(amqp_url, ds, timeline, args.publishers, args.backlog))
        last_print = started
        seen = 0
        while True:
            await asyncio.sleep(0.5)
            seen = await inbox_count(conn)
            if publishing.done() and publishing.exception():
                raise publishing.exception()  # type: ignore[misc]
            if seen >= total:
                break
            if time.monotonic() - last_print >= 30:
                last_print = time.monotonic()
                rate = (seen - len(setup)) / (last_print - started)
                eta = (total - seen) / rate if rate else 0
                print(f"    {seen:,}/{total:,} events handled, {rate:,.0f}/s, ~{eta:.0f} s to go", flush=True)
            if args.max_load_seconds and time.monotonic() - started > args.max_load_seconds:
                raise RuntimeError(f"load not drained after {args.max_load_seconds} s: {seen}/{total}")
        elapsed = time.monotonic() - started
        await publishing
        pg = cpu_spent(pg_before, await postgres_cpu(args.admin_dsn, DATABASE))
        reports_cpu = tree_cpu_seconds(reports_pid) - cpu_before[0]
        mq_cpu = cpu_seconds(mq) - cpu_before[1]
        bench_cpu = cpu_seconds(os.getpid()) - cpu_before[2]
        events = len(timeline)
        dlq = 0
        connection = await aio_pika.connect(amqp_url)
        async with connection:
            channel = await connection.channel()
            dlq = int((await channel.declare_queue(f"{QUEUE}.dlq", passive=True)).declaration_result.message_count)
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM reports.intervention_fait) AS interventions,"
            " (SELECT count(*) FROM reports.intervention_fait WHERE statut IN ('cloturee', 'archivee')) AS closed,"
            " (SELECT count(*) FROM reports.panne_episode) AS breakdowns,"
            " (SELECT count(*) FROM reports.agregat_jour) AS agregat_jour_rows,"
            " pg_size_pretty(pg_database_size(current_database())) AS database_size"
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    result = {
        "interventions": len(ds.interventions),
        "events": events,
        "seconds": elapsed,
        "events_per_s": events / elapsed,
        "cpu_ms_per_1000_events": {
            "reports": reports_cpu * 1e6 / events,
            "postgresql": pg * 1e6 / events,
            "rabbitmq": mq_cpu * 1e6 / events,
            "publisher (this script)": bench_cpu * 1e6 / events,
        },
        "dead_letters": dlq,
        "read_model": dict(counts),
        "load_average": os.getloadavg()[0],
    }
    cpu = result["cpu_ms_per_1000_events"]
    print(
        f"    {events:,} events in {elapsed:.0f} s: {result['events_per_s']:,.0f} events/s; CPU ms per 1,000 events: "
        + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
        + f"; dead letters {dlq}; read model {dict(counts)}",
        flush=True,
    )
    full = 100_000
    if len(ds.interventions) < full:
        scale = full / len(ds.interventions)
        print(
            f"    extrapolated to {full:,} interventions (~{events * scale:,.0f} events at this rate): "
            f"~{elapsed * scale / 60:.0f} min",
            flush=True,
        )
    return ds, result


# --- KPI queries -----------------------------------------------------------------------------------


async def kpi_round(
    base: str,
    via: str,
    kpi: str,
    extra: dict[str, str],
    token: str,
    ds: DataSet,
    args: argparse.Namespace,
    pids: dict[str, int],
    *,
    days_back: int = 0,
) -> dict[str, Any]:
    au = ds.now.date() - timedelta(days=days_back)
    du = ds.now.date().replace(year=ds.now.year - 2)
    rng = random.Random(f"{kpi}/{via}")
    types = sorted(set(ds.equipment_type))

    def params(n: int) -> dict[str, str]:
        p = {"du": du.isoformat(), "au": au.isoformat(), "pas": "mois", **extra}
        which = FILTERS[n % len(FILTERS)]
        if which == "client_id":
            p["client_id"] = str(rng.randint(1, CLIENTS))
        elif which == "type_equipement":
            p["type_equipement"] = rng.choice(types)
        elif which == "technicien_id":
            p["technicien_id"] = str(rng.randint(1, TECHNICIANS))
        return p

    url = f"{base}/api/v1/kpis/{kpi}"
    latencies: dict[str, list[float]] = {f: [] for f in FILTERS}
    errors: list[str] = []
    counter = iter(range(10**9))
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for n in range(len(FILTERS)):  # warm: one of each
            async with session.get(url, params=params(n)) as response:
                await response.read()
        cpu_before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
        pg_before = await postgres_cpu(args.admin_dsn, DATABASE)
        stop_at = time.monotonic() + args.seconds

        async def worker() -> None:
            while time.monotonic() < stop_at:
                n = next(counter)
                start = time.perf_counter()
                async with session.get(url, params=params(n)) as response:
                    body = await response.read()
                    if response.status != 200:
                        errors.append(f"{response.status} {body[:300]!r}")
                        continue
                latencies[FILTERS[n % len(FILTERS)]].append(time.perf_counter() - start)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.monotonic() - started
    every = [x for values in latencies.values() for x in values]
    done = max(1, len(every))
    cpu = {name: (tree_cpu_seconds(pid) - cpu_before[name]) * 1000 / done for name, pid in pids.items()}
    cpu["postgresql"] = cpu_spent(pg_before, await postgres_cpu(args.admin_dsn, DATABASE)) * 1000 / done
    if errors:
        print(f"  {kpi} via {via}: {len(errors)} errors, the first: {errors[0]}", file=sys.stderr)
    return {
        "kpi": kpi
        + ("?" + "&".join(f"{k}={v}" for k, v in extra.items()) if extra else "")
        + (f" (au=today-{days_back}d)" if days_back else ""),
        "via": via,
        "requests": len(every),
        "errors": len(errors),
        "req_s": len(every) / elapsed,
        "p50_ms": percentile_ms(every, 0.5) if every else 0.0,
        "p95_ms": percentile_ms(every, 0.95) if every else 0.0,
        "p99_ms": percentile_ms(every, 0.99) if every else 0.0,
        "p95_ms_by_filter": {f: percentile_ms(v, 0.95) if v else 0.0 for f, v in latencies.items()},
        "cpu_ms_per_request": cpu,
        "cpu_ms_service": cpu["reports"] + cpu["postgresql"],
        "load_average": os.getloadavg()[0],
    }


def print_kpi(r: dict[str, Any]) -> None:
    by = " ".join(f"{f.split('_')[0]} {ms:.0f}" for f, ms in r["p95_ms_by_filter"].items())
    gw = f" +gateway {r['cpu_ms_per_request']['gateway']:.2f}" if "gateway" in r["cpu_ms_per_request"] else ""
    print(
        f"  {r['kpi']:<24} {r['via']:<7} {r['req_s']:6.1f} req/s  p50 {r['p50_ms']:6.1f}  p95 {r['p95_ms']:6.1f}  "
        f"p99 {r['p99_ms']:6.1f} ms  (p95 by filter: {by})  CPU/req reports {r['cpu_ms_per_request']['reports']:.2f}"
        f" + PostgreSQL {r['cpu_ms_per_request']['postgresql']:.2f} = {r['cpu_ms_service']:.2f} ms{gw}"
        f"  errors {r['errors']}  load {r['load_average']:.1f}",
        flush=True,
    )


# --- exports ---------------------------------------------------------------------------------------


class RssSampler:
    """The process's VmRSS every 50 ms in a thread, its peak; `VmHWM` reset at the start (clear_refs)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.before = pid, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _status(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, self._status("VmRSS"))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.before = self._status("VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(OSError):
            self.peak = max(self.peak, self._status("VmHWM"))


async def export_job(
    base: str, token: str, body: dict[str, Any], pid: int, label: str, admin_dsn: str, exports_dir: Path
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=1800)
    cpu_before = tree_cpu_seconds(pid)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        with RssSampler(pid) as rss:
            started = time.monotonic()
            async with session.post(f"{base}/api/v1/rapports/exports", json=body) as response:
                answer = await response.read()
                if response.status not in (200, 202):
                    raise RuntimeError(f"{label}: {response.status} {answer[:500]!r}")
            if response.status == 200:  # small enough to be answered at once (short runs)
                job = {"statut": "completed", "lien": None, "lignes": None}
            else:
                job = json.loads(answer)
            polled_from = "api"
            while job["statut"] not in ("completed", "failed"):
                await asyncio.sleep(0.1)
                async with session.get(f"{base}/api/v1/rapports/jobs/{job['id']}") as response:
                    if response.status == 200:
                        job = await response.json()
                        continue
                    # The job's page is broken: its row then (and the file from the exports directory).
                    if polled_from == "api":
                        problem = (await response.read())[:200]
                        where = f"GET /api/v1/rapports/jobs/{job['id']}"
                        print(f"  {where}: {response.status} {problem!r}", file=sys.stderr)
                    polled_from = f"database (GET /jobs/{{id}} answered {response.status})"
                    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
                    try:
                        row = await conn.fetchrow("SELECT * FROM reports.export_job WHERE id = $1", job["id"])
                    finally:
                        await conn.close()
                    job = {**dict(row), "id": row["id"], "lien": None}
            generated = time.monotonic() - started
            if job["statut"] != "completed":
                raise RuntimeError(f"{label}: job failed: {job.get('erreur')}")
            content = answer
            if polled_from != "api":
                content = (exports_dir / job["fichier"]).read_bytes()
            elif job["lien"] is not None:
                async with session.get(base + job["lien"]) as response:
                    content = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{label}: {response.status} fetching {job['lien']}")
            total = time.monotonic() - started
    result = {
        "export": label,
        "job_seconds": generated,
        "seconds_with_download": total,
        "bytes": len(content),
        "lignes": job.get("lignes"),
        "rss_before_mb": rss.before / 2**20,
        "rss_peak_mb": rss.peak / 2**20,
        "reports_cpu_s": tree_cpu_seconds(pid) - cpu_before,
        "polled_from": polled_from,
        "content": content,
    }
    return result


async def exports(
    base: str, token: str, ds: DataSet, args: argparse.Namespace, pid: int, exports_dir: Path
) -> list[dict[str, Any]]:
    import pypdf

    au = ds.now.date()
    du = au.replace(year=au.year - 2)
    results = []
    if "xlsx" in args.exports:
        body = {"rapport": "interventions", "format": "xlsx", "filtres": {"du": du.isoformat(), "au": au.isoformat()}}
        r = await export_job(base, token, body, pid, "interventions.xlsx (two years)", args.admin_dsn, exports_dir)
        r.pop("content")
        results.append(r)
        print_export(r)
    if "pdf" in args.exports:
        # The busiest client's busiest complete month (by creation, in the company's time zone).
        conn = await asyncpg.connect(database_dsn(args.admin_dsn, DATABASE))
        try:
            row = await conn.fetchrow(
                """
                SELECT client_id, to_char(date_creation AT TIME ZONE 'Africa/Casablanca', 'YYYY-MM') AS mois,
                       count(*) AS n
                FROM reports.intervention_fait
                WHERE date_creation < date_trunc('month', now() AT TIME ZONE 'Africa/Casablanca')
                GROUP BY 1, 2 ORDER BY n DESC LIMIT 1
                """
            )
        finally:
            await conn.close()
        body = {
            "rapport": "rapport_mensuel",
            "format": "pdf",
            "mois": row["mois"],
            "filtres": {"client_id": row["client_id"]},
            "asynchrone": True,
        }
        label = f"rapport_mensuel.pdf (client {row['client_id']}, {row['mois']})"
        r = await export_job(base, token, body, pid, label, args.admin_dsn, exports_dir)
        r["interventions_in_month"] = row["n"]
        r["pages"] = len(pypdf.PdfReader(io.BytesIO(r.pop("content"))).pages)
        results.append(r)
        print_export(r)
    return results


def print_export(r: dict[str, Any]) -> None:
    pages = f", {r['pages']} pages ({r['interventions_in_month']} interventions)" if "pages" in r else ""
    print(
        f"  {r['export']}: job {r['job_seconds']:.1f} s (+ download: {r['seconds_with_download']:.1f} s), "
        f"{r['bytes'] / 2**20:.1f} MB, {r['lignes']} rows{pages}; reports CPU {r['reports_cpu_s']:.1f} s; "
        f"RSS {r['rss_before_mb']:.0f} MB before, peak {r['rss_peak_mb']:.0f} MB; polled from {r['polled_from']}",
        flush=True,
    )


# --- the run ---------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from mif_common.testing.infra import start_infra
    from mif_common.testing.keys import TestKeys

    keys = TestKeys(Ed25519PrivateKey.generate(), kid=f"bench-{uuid.uuid4().hex[:8]}")
    token = keys.token("responsable", user_id=1, ttl=7200)
    runner, jwks_base = await serve_jwks(keys.jwks)
    infra = start_infra()
    procs = Processes("mif-bench-reports-")
    failed = True
    results: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if k != "json"}}
    try:
        amqp_url = await asyncio.to_thread(infra.new_vhost)  # deleted by infra.close()
        print(f"==> database, vhost, processes (logs in {procs.tmp})", flush=True)
        urls = await start(procs, args, amqp_url, jwks_base)
        pids = urls["pids"]
        rss0 = RssSampler(pids["reports"])._status("VmRSS") / 2**20
        if args.reuse:  # the read model of an earlier run, migrated by setup to this tree's schema
            print(f"==> reusing {DATABASE} as an earlier run left it (reports RSS {rss0:.0f} MB)", flush=True)
            ds = generate(args.interventions)
            # Tables a migration just filled have no statistics yet; a load ends with the same.
            conn = await asyncpg.connect(database_dsn(args.admin_dsn, DATABASE))
            try:
                await conn.execute("VACUUM ANALYZE")
            finally:
                await conn.close()
        else:
            print(f"==> loading {args.interventions:,} interventions through {QUEUE} (reports RSS {rss0:.0f} MB)")
            ds, results["load"] = await load_events(args, amqp_url, pids["reports"])
        results["reports_rss_after_load_mb"] = RssSampler(pids["reports"])._status("VmRSS") / 2**20
        print(f"==> KPIs at c={args.concurrency}, {args.seconds:g} s each, two years, pas=mois", flush=True)
        results["kpis"] = []
        targets = [v for v in ("direct", "gateway") if v in args.via]
        for k, (kpi, extra) in enumerate(KPIS):
            for via in targets if k % 2 == 0 else targets[::-1]:
                base = urls["reports"] if via == "direct" else urls["gateway"]
                measured = {"reports": pids["reports"]} | ({"gateway": pids["gateway"]} if via == "gateway" else {})
                r = await kpi_round(base, via, kpi, extra, token, ds, args, measured)
                results["kpis"].append(r)
                print_kpi(r)
                if r["errors"] and not r["requests"]:  # every answer an error: the same a day earlier
                    r = await kpi_round(base, via, kpi, extra, token, ds, args, measured, days_back=1)
                    results["kpis"].append(r)
                    print_kpi(r)
        for r in results["kpis"]:
            if r["errors"]:
                print(f"    {r['kpi']} via {r['via']}: {r['errors']} errors (see above)")
        worst = max(results["kpis"], key=lambda r: r["p95_ms"])
        print(f"    worst p95: {worst['kpi']} via {worst['via']} {worst['p95_ms']:.1f} ms (target 50 ms)")
        if args.exports:
            print("==> exports (jobs)", flush=True)
            results["exports"] = await exports(urls["reports"], token, ds, args, pids["reports"], urls["exports_dir"])
        failed = False
        return results
    finally:
        procs.close(failed=failed or args.keep_logs)
        await runner.cleanup()
        with contextlib.suppress(Exception):
            infra.close()  # deletes the vhost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interventions", type=int, default=100_000)
    parser.add_argument("--publishers", type=int, default=8, help="concurrent publishing channels")
    parser.add_argument("--backlog", type=int, default=20_000, help="most messages queued ahead of the consumer")
    parser.add_argument("--max-load-seconds", type=float, default=0, help="give up the load after this long")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0, help="per KPI and target")
    parser.add_argument("--via", default="direct,gateway", help="direct, gateway or both")
    parser.add_argument("--exports", default="xlsx,pdf", help="xlsx, pdf, both or '' (none)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="no load: query the database an earlier run left (same --interventions), after this tree's migrations",
    )
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    add_admin_dsn(parser)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
