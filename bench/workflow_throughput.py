"""Whole-suite cost of a workflow step: `PATCH /api/v1/interventions/{id}/statut` by the intervention's own
technician, through the gateway, with every service, consumer and PostgreSQL backend counted.

    .venv/bin/python bench/workflow_throughput.py                        # this tree only
    .venv/bin/python bench/workflow_throughput.py --baseline 9c829da     # side by side with that commit
    .venv/bin/python bench/workflow_throughput.py --baseline HEAD --seconds 15 --rounds 2 --json out.json

For each build (this working tree, and with `--baseline REV` that commit's tree, exported with
`git archive`), everything runs here on loopback: a database `mif_bench_workflow_<build>` made afresh by
the build's own `python -m mif_common.cli setup`, a RabbitMQ vhost of its own (deleted at the end), the
build's first admin (`python -m mif_auth.bootstrap`) and every line of the build's own `Procfile` (each
service, the SMTP sink, the gateway) on free ports, as `make run` starts them; rate limits off.

Seeded identically in both (not timed): 50 technicians with a competence, 2,000 equipment (through the
API, so every replica learns them from the events), 100,000 historical interventions written straight
into the interventions schema and into the four replicas of them (assets, documents, notifications,
planning) — the volume the queries run against — and, through the API, a working set of interventions
assigned to each of the first 16 technicians.

Then, in alternating rounds (build A, build B, A, B, ...) at each concurrency (default 4 and 16): each of
`c` workers is one technician, signed in with their own token, moving their own interventions through
the workflow as fast as the answers come (affectee → en_cours, then en_cours ⇄ en_attente). A round
lasts `--seconds`; afterwards the bench waits until every consumer queue and every outbox is empty (the
drain time). Printed per round: req/s, p50/p95/p99 of the PATCH, the CPU milliseconds per step of each
process from /proc (gateway, each service, the SMTP sink, the build's PostgreSQL backends; RabbitMQ
apart, as it serves both builds), counted from the start of the round to the end of the drain so that
consumers' work is included, and the deepest each queue got.

Last, per build, the event → in-app latency under that load: while `c=4` workers run, a manager assigns an
intervention to a probe technician every 250 ms and the probe polls its notifications through the gateway
(every 10 ms) until that intervention's notification is the newest; p50/p95/p99 from the assignment
sent. Its CPU is not counted in the figures above.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aio_pika
import aio_pika.abc
import asyncpg
import httpx
from support import (  # bench/support.py, next to this script
    PYTHON,
    REPO,
    Proc,
    Processes,
    add_admin_dsn,
    cpu_seconds,
    database_dsn,
    export_tree,
    free_port,
    imported_from,
    login,
    percentile_ms,
    postgres_cpu,
    tree_cpu_seconds,
    tree_env,
    wait_ready,
)

if TYPE_CHECKING:
    from mif_common.testing.infra import Infra

ADMIN_PASSWORD = "Mesure-Flux-7!xQz"  # throwaway accounts in throwaway databases
TECH_PASSWORD = "Technicien-Banc-42!"
SERVICES = ("auth", "assets", "interventions", "planning", "documents", "notifications")
# Of the interventions written straight to the database: mostly history, some still open.
HISTORY_STATUTS = ("cloturee",) * 14 + ("archivee",) * 3 + ("annulee", "ouverte", "affectee", "en_cours")
# A worker's next move for each statut of its intervention.
NEXT = {"affectee": "en_cours", "en_cours": "en_attente", "en_attente": "en_cours"}


# --- the builds ------------------------------------------------------------------------------------


@dataclass
class SuiteBuild:
    name: str
    tree: Path
    env: dict[str, str]  # PYTHONPATH of the tree (empty for this working tree)
    database: str = ""
    amqp_url: str = ""
    amqp: aio_pika.abc.AbstractConnection | None = None
    procs: dict[str, Proc] = field(default_factory=dict)
    base: str = ""
    suite_env: dict[str, str] = field(default_factory=dict)
    technicians: list[dict[str, Any]] = field(default_factory=list)  # user, profile, headers, interventions
    admin: dict[str, str] = field(default_factory=dict)
    probe: dict[str, Any] = field(default_factory=dict)
    equipment: list[int] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)


def procfile(tree: Path) -> dict[str, list[str]]:
    """The build's Procfile: name → argv (`uvicorn`/`python` resolved to this environment)."""
    lines = (tree / "Procfile").read_text().splitlines()
    out = {}
    for line in lines:
        if ":" not in line or line.lstrip().startswith("#"):
            continue
        name, command = line.split(":", 1)
        argv = shlex.split(command)
        if argv[0] in ("python", "python3"):
            argv[0] = PYTHON
        elif argv[0] == "uvicorn":
            argv = [PYTHON, "-m", "uvicorn", *argv[1:]]
        out[name.strip()] = argv
    return out


def with_port(argv: list[str], port: int) -> list[str]:
    """`argv` listening on `port` instead (uvicorn's `--port N`, aiosmtpd's `-l host:N`)."""
    argv = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == "--port":
            argv[i + 1] = str(port)
        elif arg == "-l":
            argv[i + 1] = f"{argv[i + 1].rsplit(':', 1)[0]}:{port}"
    return argv


async def start_suite(build: SuiteBuild, procs: Processes, admin_dsn: str, infra: Infra) -> None:
    from mif_common.provision import service_database_url
    from mif_common.suite import service

    build.database = f"mif_bench_workflow_{build.name}"
    build.amqp_url = await asyncio.to_thread(infra.new_vhost)  # deleted by infra.close()
    build.amqp = await aio_pika.connect(build.amqp_url)  # the bench's own: queue depths
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{build.database}" WITH (FORCE)')
    finally:
        await conn.close()

    commands = procfile(build.tree)
    ports = {name: free_port() for name in commands}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        **build.env,
        "MIF_ENVIRONMENT": "development",
        "MIF_LOG_LEVEL": "WARNING",
        "MIF_ADMIN_DSN": admin_dsn,
        "MIF_DATABASE_NAME": build.database,
        "MIF_AMQP_URL": build.amqp_url,
        "MIF_AUTH_URL": url["auth"],
        "MIF_ASSETS_URL": url["assets"],
        "MIF_PLANNING_URL": url["planning"],
        "MIF_PLANNING_PUBLIC_URL": url["gateway"],
        "MIF_DOCUMENTS_INTERVENTIONS_URL": url["interventions"],
        "MIF_AUTH_KEY_DIR": str(procs.tmp / f"{build.name}-auth-keys"),
        "MIF_DOCUMENTS_STORAGE_DIR": str(procs.tmp / f"{build.name}-documents"),
        "MIF_AUTH_ARGON2_MEMORY_KIB": "1024",  # sign-in is not what is measured here
        "MIF_AUTH_ARGON2_TIME_COST": "1",
        "MIF_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "MIF_NOTIFICATIONS_SMTP_PORT": str(ports["smtp"]),
        "MIF_GATEWAY_UPSTREAMS": json.dumps({name: url[name] for name in SERVICES}),
        "MIF_GATEWAY_RATE_LIMIT_ENABLED": "false",
        "MIF_GATEWAY_RATE_USER_PER_WINDOW": "100000000",
        "MIF_GATEWAY_RATE_ANONYMOUS_PER_WINDOW": "100000000",
        "MIF_GATEWAY_LOGIN_PER_IP": "100000",
        "MIF_ADMIN_EMAIL": f"bench-{build.name}@bench.mif.ma",
        "MIF_ADMIN_USERNAME": "bench",
        "MIF_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **{
            f"MIF_{name.upper()}_DATABASE_URL": service_database_url(admin_dsn, build.database, service(name))
            for name in SERVICES
        },
    }
    build.suite_env = env
    for step in (["-m", "mif_common.cli", "setup"], ["-m", "mif_auth.bootstrap"]):
        done = await asyncio.to_thread(
            subprocess.run,
            [PYTHON, *step],
            env={**os.environ, **env},
            cwd=build.tree,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{build.name}: {' '.join(step)} failed:\n{done.stdout}\n{done.stderr}")
    print(f"    {build.name}: {imported_from(env, build.tree)}", flush=True)
    for name, argv in commands.items():
        build.procs[name] = procs.start(f"{build.name}-{name}", with_port(argv, ports[name]), env, cwd=build.tree)
    for name in (*SERVICES, "gateway"):
        await wait_ready(f"{url[name]}/health/live", build.procs[name], limit=120)
    build.base = url["gateway"]


# --- seeding ---------------------------------------------------------------------------------------


async def each(items: list[Any], work: Any, concurrency: int = 8) -> list[Any]:
    results: list[Any] = [None] * len(items)
    queue = list(enumerate(items))

    async def worker() -> None:
        while queue:
            index, item = queue.pop()
            results[index] = await work(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def call(http: httpx.AsyncClient, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    """One API call, retried while the answer is 404/409/422 because a replica has not caught up yet."""
    deadline = time.monotonic() + 60
    while True:
        response = await http.request(method, path, headers=headers, **kw)
        if response.status_code < 300:
            return response.json()
        if response.status_code not in (404, 409, 422, 503) or time.monotonic() > deadline:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        await asyncio.sleep(0.2)


async def seed(build: SuiteBuild, args: argparse.Namespace, admin_dsn: str) -> None:
    async with httpx.AsyncClient(base_url=build.base, timeout=30) as http:
        admin = build.admin = await login(http, "bench", ADMIN_PASSWORD)
        competence = await call(http, "POST", "/api/v1/techniciens/competences", admin, json={"nom": "Mécanique"})

        async def technician(n: int) -> dict[str, Any]:
            username = f"tech{n:03d}"
            user = await call(
                http,
                "POST",
                "/api/v1/users",
                admin,
                json={
                    "username": username,
                    "full_name": f"Technicien {n}",
                    "email": f"{username}@bench.mif.ma",
                    "role": "technicien",
                    "password": TECH_PASSWORD,
                },
            )
            profile = await call(
                http,
                "POST",
                "/api/v1/techniciens",
                admin,
                json={"user_id": user["id"], "competences": [{"id": competence["id"], "niveau": "expert"}]},
            )
            return {"user": user, "profile": profile, "headers": await login(http, username, TECH_PASSWORD)}

        build.technicians = await each(list(range(args.technicians + 1)), technician)
        build.probe = build.technicians.pop()

        async def equipment(n: int) -> int:
            body = {"nom": f"Compresseur {n:04d}", "type": "compresseur", "localisation": f"Atelier {n % 40}"}
            return int((await call(http, "POST", "/api/v1/equipements", admin, json=body))["id"])

        build.equipment = await each(list(range(args.equipment)), equipment)
        await drained(build, limit=120, admin_dsn=admin_dsn)
        await seed_history(build, args, admin_dsn)

        workers = build.technicians[: max(args.concurrency)]

        async def working(item: tuple[int, int]) -> None:
            w, n = item
            tech = workers[w]
            body = {
                "titre": f"Révision compresseur {w}-{n}",
                "type": "corrective",
                "equipement_id": build.equipment[(w * 97 + n) % len(build.equipment)],
                "technicien_id": tech["profile"]["id"],
            }
            created = await call(http, "POST", "/api/v1/interventions", admin, json=body)
            tech.setdefault("interventions", {})[created["id"]] = created["statut"]

        await each([(w, n) for w in range(len(workers)) for n in range(args.per_worker)], working)
        await drained(build, limit=120, admin_dsn=admin_dsn)


async def seed_history(build: SuiteBuild, args: argparse.Namespace, admin_dsn: str) -> None:
    """`args.interventions` interventions written straight to the interventions schema, and copied into
    the four replicas of them: the volume the services' queries and consumers work against."""
    technicians = [t["profile"]["id"] for t in build.technicians]
    statuts = "ARRAY[" + ",".join(f"'{s}'" for s in HISTORY_STATUTS) + "]"
    conn = await asyncpg.connect(database_dsn(admin_dsn, build.database))
    try:
        await conn.execute(
            f"""
            INSERT INTO interventions.intervention
                (titre, type, statut, priorite, equipement_id, technicien_id, date_creation, date_modification,
                 date_affectation, date_debut_travaux, date_fin_travaux, date_cloture, created_by, created_by_role)
            SELECT 'Historique ' || g || ' : ' || (ARRAY['vibration anormale','fuite d''huile','surchauffe',
                        'bruit roulement','contrôle annuel'])[1 + g % 5],
                   (ARRAY['corrective','preventive','diagnostic'])[1 + g % 3],
                   s.statut,
                   (ARRAY['basse','normale','normale','haute'])[1 + g % 4],
                   ($1::bigint[])[1 + g % cardinality($1::bigint[])],
                   CASE WHEN s.statut = 'ouverte' THEN NULL ELSE ($2::bigint[])[1 + g % cardinality($2::bigint[])] END,
                   d, d, d, d, d + interval '3 hours',
                   CASE WHEN s.statut IN ('cloturee','archivee') THEN d + interval '1 day' END,
                   1, 'admin'
            FROM generate_series(1, $3::int) AS g,
                 LATERAL (SELECT ({statuts})[1 + (g * 7) % {len(HISTORY_STATUTS)}] AS statut) AS s,
                 LATERAL (SELECT now() - (g * interval '5 minutes') AS d) AS t
            """,
            build.equipment,
            technicians,
            args.interventions,
        )
        await conn.execute(
            """
            INSERT INTO assets.intervention_ref (intervention_id, equipement_id, statut, occurred_at)
            SELECT id, equipement_id, statut, date_modification FROM interventions.intervention
            ON CONFLICT DO NOTHING;
            INSERT INTO documents.intervention_ref (intervention_id, client_id, technicien_id, statut, occurred_at)
            SELECT id, client_id, technicien_id, statut, date_modification FROM interventions.intervention
            ON CONFLICT DO NOTHING;
            INSERT INTO notifications.intervention_ref
                (intervention_id, titre, client_id, technicien_id, requester_id, statut, occurred_at)
            SELECT id, titre, client_id, technicien_id, created_by, statut, date_modification
            FROM interventions.intervention ON CONFLICT DO NOTHING;
            INSERT INTO planning.intervention_ref
                (intervention_id, technicien_id, equipement_id, statut, type, titre, priorite, planning_id,
                 date_limite, created_at, started_at, ended_at, occurred_at)
            SELECT id, technicien_id, equipement_id, statut, type, titre, priorite, planning_id, date_limite,
                   date_creation, date_debut_travaux, date_fin_travaux, date_modification
            FROM interventions.intervention ON CONFLICT DO NOTHING;
            ANALYZE interventions.intervention; ANALYZE assets.intervention_ref;
            ANALYZE documents.intervention_ref; ANALYZE notifications.intervention_ref;
            ANALYZE planning.intervention_ref;
            """
        )
    finally:
        await conn.close()


# --- queues, outboxes, drain -----------------------------------------------------------------------


async def queue_depths(build: SuiteBuild) -> dict[str, int]:
    """Messages waiting in each consumer queue of the build's vhost (passive declarations)."""
    from mif_common.events.topology import consumer_queue_name

    assert build.amqp is not None
    depths: dict[str, int] = {}
    for name in SERVICES:
        channel = await build.amqp.channel()
        try:
            queue = await channel.declare_queue(consumer_queue_name(name), passive=True)
            depths[name] = int(queue.declaration_result.message_count or 0)
        except aio_pika.exceptions.ChannelClosed:
            continue  # that service consumes nothing
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
    return depths


async def outbox_pending(conn: asyncpg.Connection) -> int:
    total = 0
    for name in SERVICES:
        total += int(await conn.fetchval(f"SELECT count(*) FROM {name}.outbox WHERE published_at IS NULL") or 0)
    return total


async def drained(build: SuiteBuild, *, limit: float, admin_dsn: str) -> float:
    """Seconds until every consumer queue and every outbox of the build are empty (twice in a row)."""
    start = time.monotonic()
    conn = await asyncpg.connect(database_dsn(admin_dsn, build.database))
    try:
        empty_once = False
        while time.monotonic() - start < limit:
            waiting = sum((await queue_depths(build)).values()) + await outbox_pending(conn)
            if waiting == 0:
                if empty_once:
                    return time.monotonic() - start
                empty_once = True
            else:
                empty_once = False
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise RuntimeError(f"{build.name}: consumers still behind after {limit:.0f} s")


# --- load ------------------------------------------------------------------------------------------


def rabbitmq_pid() -> int | None:
    found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


async def run_round(build: SuiteBuild, concurrency: int, seconds: float, admin_dsn: str) -> dict[str, Any]:
    pids = {name: proc.pid for name, proc in build.procs.items()}
    mq = rabbitmq_pid()
    cpu_before = {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    pg_before = await postgres_cpu(admin_dsn, build.database)
    mq_before = cpu_seconds(mq)
    latencies: list[float] = []
    errors: list[str] = []
    depth_samples: list[dict[str, int]] = []
    stop_at = time.monotonic() + seconds

    async def worker(tech: dict[str, Any], http: httpx.AsyncClient) -> None:
        statuts: dict[int, str] = tech["interventions"]
        ids = list(statuts)
        i = 0
        while time.monotonic() < stop_at:
            iid = ids[i % len(ids)]
            i += 1
            target = NEXT[statuts[iid]]
            start = time.perf_counter()
            response = await http.patch(
                f"/api/v1/interventions/{iid}/statut", params={"statut": target}, headers=tech["headers"]
            )
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
                continue
            latencies.append(time.perf_counter() - start)
            statuts[iid] = target

    async def sample() -> None:
        while time.monotonic() < stop_at:
            depth_samples.append(await queue_depths(build))
            await asyncio.sleep(0.5)

    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=build.base, timeout=30, limits=limits) as http:
        started = time.monotonic()
        await asyncio.gather(sample(), *(worker(tech, http) for tech in build.technicians[:concurrency]))
        elapsed = time.monotonic() - started
    at_stop = await queue_depths(build)
    drain = await drained(build, limit=300, admin_dsn=admin_dsn)
    steps = len(latencies)
    cpu = {name: (tree_cpu_seconds(pid) - cpu_before[name]) * 1000 / max(1, steps) for name, pid in pids.items()}
    pg_after = await postgres_cpu(admin_dsn, build.database)
    cpu["postgresql"] = sum(max(0.0, v - pg_before.get(pid, 0.0)) for pid, v in pg_after.items()) * 1000 / max(1, steps)
    if errors:
        print(f"  {len(errors)} errors, the first: {errors[0]}", file=sys.stderr)
    queues = sorted({name for sample in depth_samples for name in sample})
    return {
        "build": build.name,
        "concurrency": concurrency,
        "steps": steps,
        "errors": len(errors),
        "req_s": steps / elapsed,
        "p50_ms": percentile_ms(latencies, 0.50),
        "p95_ms": percentile_ms(latencies, 0.95),
        "p99_ms": percentile_ms(latencies, 0.99),
        "cpu_ms_per_step": cpu,
        "cpu_ms_total": sum(cpu.values()),
        "rabbitmq_cpu_ms_per_step": (cpu_seconds(mq) - mq_before) * 1000 / max(1, steps),
        "max_queue_depth": {q: max(s.get(q, 0) for s in depth_samples) for q in queues},
        "queue_depth_at_stop": at_stop,
        "drain_s": drain,
        "load_average": os.getloadavg()[0],
    }


async def latency_round(build: SuiteBuild, args: argparse.Namespace, admin_dsn: str) -> dict[str, float]:
    """Assignment → the probe technician reads its notification, while c=4 workers run."""
    async with httpx.AsyncClient(base_url=build.base, timeout=30) as http:
        ids = []
        for n in range(args.probes + 1):
            body = {"titre": f"Sonde {n}", "type": "diagnostic", "equipement_id": build.equipment[n]}
            ids.append((await call(http, "POST", "/api/v1/interventions", build.admin, json=body))["id"])
        await drained(build, limit=120, admin_dsn=admin_dsn)
        probe_tech = build.probe["profile"]["id"]
        samples: list[float] = []
        load = asyncio.create_task(run_round(build, 4, args.probes * 0.25 + 10, admin_dsn))
        await asyncio.sleep(2)
        for iid in ids[1:]:
            sent = time.perf_counter()
            path = f"/api/v1/interventions/{iid}/affecter"
            await call(http, "POST", path, build.admin, json={"technicien_id": probe_tech})
            while True:
                top = (await http.get("/api/v1/notifications/user/me?limit=1", headers=build.probe["headers"])).json()
                if top and top[0].get("intervention_id") == iid:
                    samples.append(time.perf_counter() - sent)
                    break
                if time.perf_counter() - sent > 10:
                    raise RuntimeError(f"{build.name}: no notification for {iid} within 10 s")
                await asyncio.sleep(0.01)
            await asyncio.sleep(max(0.0, 0.25 - (time.perf_counter() - sent)))
        await load
    return {f"p{q}_ms": percentile_ms(samples, q / 100) for q in (50, 95, 99)}


# --- the run ---------------------------------------------------------------------------------------


def print_round(r: dict[str, Any]) -> None:
    cpu = r["cpu_ms_per_step"]
    parts = ", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
    print(
        f"  {r['build']:<8} c={r['concurrency']:<3} {r['req_s']:7.1f} req/s  p50 {r['p50_ms']:6.1f}  "
        f"p95 {r['p95_ms']:6.1f}  p99 {r['p99_ms']:6.1f} ms  CPU/step {r['cpu_ms_total']:5.1f} ms "
        f"(+RabbitMQ {r['rabbitmq_cpu_ms_per_step']:.1f})  drain {r['drain_s']:.1f} s  load {r['load_average']:.1f}",
        flush=True,
    )
    print(f"           CPU ms/step: {parts}", flush=True)
    print(f"           deepest queues: {r['max_queue_depth']}; at stop: {r['queue_depth_at_stop']}", flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from mif_common.testing.infra import start_infra

    infra = start_infra()
    procs = Processes("mif-bench-workflow-")
    builds = [SuiteBuild("current", REPO, {})]
    failed = True
    try:
        if args.baseline:
            tree = procs.tmp / "baseline-tree"
            export_tree(args.baseline, tree)
            builds.append(SuiteBuild("baseline", tree, tree_env(tree)))
        for build in builds:
            print(f"==> {build.name}: database, vhost, processes (logs in {procs.tmp})", flush=True)
            await start_suite(build, procs, args.admin_dsn, infra)
            print(f"==> {build.name}: seeding", flush=True)
            started = time.monotonic()
            await seed(build, args, args.admin_dsn)
            print(f"    seeded in {time.monotonic() - started:.0f} s", flush=True)
        rounds = []
        for concurrency in args.concurrency:
            print(f"==> c={concurrency}: {args.rounds} rounds of {args.seconds:g} s per build, alternating", flush=True)
            for _ in range(args.rounds):
                for build in builds:
                    result = await run_round(build, concurrency, args.seconds, args.admin_dsn)
                    rounds.append(result)
                    print_round(result)
        latency = {}
        if args.probes:
            print(f"==> event → in-app notification readable ({args.probes} probes under c=4 load)", flush=True)
            for build in builds:
                latency[build.name] = await latency_round(build, args, args.admin_dsn)
                row = latency[build.name]
                print(
                    f"  {build.name:<8} p50 {row['p50_ms']:.1f}  p95 {row['p95_ms']:.1f}  p99 {row['p99_ms']:.1f} ms",
                    flush=True,
                )
        failed = False
        return {"rounds": rounds, "notification_latency": latency}
    finally:
        procs.close(failed=failed)
        for build in builds:
            if build.amqp is not None:
                await build.amqp.close()
        with contextlib.suppress(Exception):
            infra.close()  # deletes the vhosts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="a git revision measured side by side with this tree")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--technicians", type=int, default=50)
    parser.add_argument("--equipment", type=int, default=2000)
    parser.add_argument("--interventions", type=int, default=100_000)
    parser.add_argument("--per-worker", type=int, default=40, help="interventions each worker moves in turn")
    parser.add_argument("--probes", type=int, default=200, help="assignments timed for the notification latency")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    add_admin_dsn(parser)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
