"""Inventory under volume, whole suite: catalogue search and a consumption on an intervention, side by side
with the equipment list, through the gateway, with every process's CPU counted.

    .venv/bin/python bench/inventory.py                                   # 10,000 parts, 200,000 movements
    .venv/bin/python bench/inventory.py --seconds 5 --rounds 1            # a short first try
    .venv/bin/python bench/inventory.py --pieces 2000 --movements 40000 --json out.json

Everything runs here on loopback, as `make run` starts it: a database `mif_bench_inventory` made afresh by
`python -m mif_common.cli setup`, a RabbitMQ vhost of its own (deleted at the end), the first admin
(`python -m mif_auth.bootstrap`) and every line of the `Procfile` (each service, the SMTP sink, the gateway)
on free ports; rate limits off.

Seeded (not timed): `--equipment` equipment through the API (so that the replicas learn them); `--pieces`
parts (names, makers and references drawn from word lists), one central store holding each part, and
`--movements` deliveries (`entree`, spread over a year, each part's ledger consistent with its stock)
written straight into the inventory schema with SQL; `--interventions` interventions `en_cours` written
straight into inventory's replica of them (`inventory.intervention_ref`: what the consumption checks); then
`VACUUM ANALYZE`.

Measured at `--concurrency` (default 10), in rounds of `--seconds`, the three requests taking turns (the
order rotating between rounds, so that drift on the machine hits them alike), each worker sending its
next request as soon as the previous one answered:

- search: `GET /api/v1/pieces?q=<term>&limit=50`, the term cycling through a list (a maker, a word of the
  names, a size, a reference);
- consumption: `POST /api/v1/stock/interventions/{id}/consommations` of 1 unit of a random part from the
  central store, as a manager, on the interventions in turn (a ledger row, the line, the parts cost
  and its `inventory.intervention.parts_costed.v1` event through the outbox);
- equipment list: `GET /api/v1/equipements?limit=50`.

Printed per round: p50/p95/p99, requests per second and the CPU milliseconds per request of the whole
suite (every process of the Procfile with its children, the database's PostgreSQL backends; RabbitMQ and
this load generator apart), from /proc, counted until the outboxes are relayed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from support import (  # bench/support.py, next to this script
    PYTHON,
    REPO,
    Processes,
    add_admin_dsn,
    cpu_seconds,
    cpu_spent,
    database_dsn,
    free_port,
    login,
    percentile_ms,
    postgres_cpu,
    tree_cpu_seconds,
    wait_ready,
)
from workflow_throughput import each, procfile, rabbitmq_pid, with_port

DATABASE = "mif_bench_inventory"
ADMIN_PASSWORD = "Banc-Stock-9!qWz"  # a throwaway account in a throwaway database
SERVICES = ("auth", "assets", "interventions", "planning", "documents", "notifications", "inventory")
TERMS = ("skf", "roulement", "6204", "filtre huile", "courroie", "contacteur", "gates", "joint", "PR-004", "capteur")


# --- the suite -------------------------------------------------------------------------------------


async def start_suite(procs: Processes, admin_dsn: str, amqp_url: str) -> tuple[str, dict[str, int]]:
    """Every line of the Procfile on free ports; the gateway's URL and each process's pid."""
    from mif_common.provision import service_database_url
    from mif_common.suite import service

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    finally:
        await conn.close()
    commands = procfile(REPO)
    ports = {name: free_port() for name in commands}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        "MIF_ENVIRONMENT": "development",
        "MIF_LOG_LEVEL": "WARNING",
        "MIF_ADMIN_DSN": admin_dsn,
        "MIF_DATABASE_NAME": DATABASE,
        "MIF_AMQP_URL": amqp_url,
        "MIF_AUTH_URL": url["auth"],
        "MIF_ASSETS_URL": url["assets"],
        "MIF_PLANNING_URL": url["planning"],
        "MIF_PLANNING_PUBLIC_URL": url["gateway"],
        "MIF_DOCUMENTS_INTERVENTIONS_URL": url["interventions"],
        "MIF_INVENTORY_INTERVENTIONS_URL": url["interventions"],
        "MIF_INVENTORY_ASSETS_URL": url["assets"],
        "MIF_AUTH_KEY_DIR": str(procs.tmp / "auth-keys"),
        "MIF_DOCUMENTS_STORAGE_DIR": str(procs.tmp / "documents"),
        "MIF_AUTH_ARGON2_MEMORY_KIB": "1024",  # sign-in is not what is measured here
        "MIF_AUTH_ARGON2_TIME_COST": "1",
        "MIF_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "MIF_NOTIFICATIONS_SMTP_PORT": str(ports["smtp"]),
        "MIF_GATEWAY_UPSTREAMS": json.dumps({name: url[name] for name in SERVICES}),
        "MIF_GATEWAY_RATE_LIMIT_ENABLED": "false",
        "MIF_GATEWAY_RATE_USER_PER_WINDOW": "100000000",
        "MIF_GATEWAY_RATE_ANONYMOUS_PER_WINDOW": "100000000",
        "MIF_GATEWAY_LOGIN_PER_IP": "100000",
        "MIF_ADMIN_EMAIL": "bench-inventory@bench.mif.ma",
        "MIF_ADMIN_USERNAME": "bench",
        "MIF_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **{
            f"MIF_{name.upper()}_DATABASE_URL": service_database_url(admin_dsn, DATABASE, service(name))
            for name in SERVICES
        },
    }
    for step in (["-m", "mif_common.cli", "setup"], ["-m", "mif_auth.bootstrap"]):
        done = await asyncio.to_thread(
            subprocess.run,
            [PYTHON, *step],
            env={**os.environ, **env},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step)} failed:\n{done.stdout}\n{done.stderr}")
    pids = {}
    for name, argv in commands.items():
        pids[name] = procs.start(name, with_port(argv, ports[name]), env).pid
    for name in (*SERVICES, "gateway"):
        proc = next(p for p in procs.procs if p.name == name)
        await wait_ready(f"{url[name]}/health/live", proc, limit=120)
    return url["gateway"], pids


# --- seeding ---------------------------------------------------------------------------------------

# Parts drawn from these lists: "<kind> <size>" by <maker>, reference PR-<n>.
KINDS = ("Roulement à billes", "Joint à lèvre", "Filtre huile", "Filtre air", "Courroie trapézoïdale", "Contacteur",
         "Capteur inductif", "Fusible gG", "Garniture mécanique", "Câble U1000 R2V")  # fmt: skip
MAKERS = ("SKF", "FAG", "Mann-Filter", "Gates", "Schneider Electric", "Siemens", "Sick", "Corteco", "Nexans", "HYDAC")
SIZES = ("6204", "6205", "6305", "25x47x7", "W 712/75", "SPA 1250", "LC1D18", "M12", "10x38 16A", "3G2,5")


async def seed(base: str, args: argparse.Namespace, admin_dsn: str) -> dict[str, str]:
    """The equipment through the API, the parts, stock, movements and interventions with SQL; the admin's
    headers."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        admin = await login(http, "bench", ADMIN_PASSWORD)

        async def equipment(n: int) -> None:
            body = {"nom": f"Compresseur {n:05d}", "type": "compresseur", "localisation": f"Atelier {n % 40}"}
            response = await http.post("/api/v1/equipements", json=body, headers=admin)
            response.raise_for_status()

        await each(list(range(args.equipment)), equipment)
    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
    try:
        await conn.execute(
            "INSERT INTO inventory.emplacement (code, nom, type)"
            " VALUES ('MAG-CASA', 'Magasin central', 'magasin_central')"
        )
        await conn.execute(
            """
            INSERT INTO inventory.piece (reference, nom, categorie, fabricant, reference_fabricant, unite,
                                         prix_unitaire, stock_minimum, stock_maximum, types_equipement)
            SELECT 'PR-' || lpad(g::text, 6, '0'),
                   ($1::text[])[1 + g % 10] || ' ' || ($3::text[])[1 + (g / 10) % 10] || ' série ' || g % 97,
                   split_part(($1::text[])[1 + g % 10], ' ', 1),
                   ($2::text[])[1 + (g / 7) % 10],
                   ($3::text[])[1 + (g / 10) % 10] || '-' || g,
                   'piece', 1000 + (g * 37) % 90000, 2, 20, ARRAY['compresseur']
            FROM generate_series(1, $4::int) AS g;
            """,
            list(KINDS),
            list(MAKERS),
            list(SIZES),
            args.pieces,
        )
        per_piece = max(1, args.movements // args.pieces)
        # Each part's ledger: `per_piece` deliveries of 50,000 (avant/apres chained), its stock their sum.
        await conn.execute(
            """
            INSERT INTO inventory.mouvement (piece_id, emplacement_id, type, quantite, avant, apres, prix_unitaire,
                                             user_id, motif, date_mouvement)
            SELECT p.id, e.id, 'entree', 50000, k * 50000, (k + 1) * 50000, p.prix_unitaire, 1, 'Réception',
                   now() - interval '365 days' + (k * interval '1 day') * 365 / $1::int
            FROM inventory.piece p CROSS JOIN generate_series(0, $1::int - 1) AS k
                 CROSS JOIN (SELECT id FROM inventory.emplacement WHERE code = 'MAG-CASA') AS e
            ORDER BY k, p.id;
            INSERT INTO inventory.stock (piece_id, emplacement_id, quantite)
            SELECT p.id, e.id, $1::int * 50000 FROM inventory.piece p
                 CROSS JOIN (SELECT id FROM inventory.emplacement WHERE code = 'MAG-CASA') AS e;
            """.replace("$1::int", str(per_piece))
        )
        await conn.execute(
            """
            INSERT INTO inventory.intervention_ref (intervention_id, statut, occurred_at)
            SELECT g, 'en_cours', now() FROM generate_series(1000001, 1000000 + $1::int) AS g
            """.replace("$1::int", str(args.interventions))
        )
        for table in ("piece", "mouvement", "stock", "emplacement", "intervention_ref"):
            await conn.execute(f"VACUUM ANALYZE inventory.{table}")
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM inventory.piece) AS pieces, (SELECT count(*) FROM inventory.mouvement) AS"
            " movements, (SELECT count(*) FROM assets.equipement) AS equipment"
        )
        print(f"    seeded: {dict(counts)}", flush=True)
    finally:
        await conn.close()
    return admin


async def outboxes_relayed(admin_dsn: str, limit: float = 120) -> None:
    """Until every service's outbox is published (so that the relays' work is counted in the round)."""
    conn = await asyncpg.connect(database_dsn(admin_dsn, DATABASE))
    try:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            waiting = 0
            for name in SERVICES:
                waiting += await conn.fetchval(f"SELECT count(*) FROM {name}.outbox WHERE published_at IS NULL") or 0
            if not waiting:
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


# --- load ------------------------------------------------------------------------------------------

Request = Callable[[aiohttp.ClientSession, int], Any]


def requests(base: str, args: argparse.Namespace, emplacement_id: int) -> dict[str, Request]:
    rng = random.Random(2026)
    counter = iter(range(10**12))

    def search(session: aiohttp.ClientSession, n: int) -> Any:
        return session.get(f"{base}/api/v1/pieces", params={"q": TERMS[n % len(TERMS)], "limit": "50"})

    def consume(session: aiohttp.ClientSession, n: int) -> Any:
        intervention = 1000001 + next(counter) % args.interventions
        body = {"piece_id": rng.randint(1, args.pieces), "emplacement_id": emplacement_id, "quantite": 1}
        return session.post(f"{base}/api/v1/stock/interventions/{intervention}/consommations", json=body)

    def equipment(session: aiohttp.ClientSession, n: int) -> Any:
        return session.get(f"{base}/api/v1/equipements", params={"limit": "50"})

    return {"search": search, "consumption": consume, "equipment list": equipment}


async def run_round(
    name: str, request: Request, pids: dict[str, int], admin: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    cpu_before = {p: tree_cpu_seconds(pid) for p, pid in pids.items()}
    pg_before = await postgres_cpu(args.admin_dsn, DATABASE)
    mq = rabbitmq_pid()
    mq_before = cpu_seconds(mq)
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.monotonic() + args.seconds
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    async with aiohttp.ClientSession(headers=admin, connector=connector) as session:

        async def worker(w: int) -> None:
            n = w
            while time.monotonic() < stop_at:
                start = time.perf_counter()
                async with request(session, n) as response:
                    body = await response.read()
                    if response.status != 200:
                        errors.append(f"{response.status} {body[:200]!r}")
                        continue
                latencies.append(time.perf_counter() - start)
                n += args.concurrency

        started = time.monotonic()
        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        elapsed = time.monotonic() - started
    await outboxes_relayed(args.admin_dsn)
    done = max(1, len(latencies))
    cpu = {p: (tree_cpu_seconds(pid) - cpu_before[p]) * 1000 / done for p, pid in pids.items()}
    cpu["postgresql"] = cpu_spent(pg_before, await postgres_cpu(args.admin_dsn, DATABASE)) * 1000 / done
    if errors:
        print(f"  {name}: {len(errors)} errors, the first: {errors[0]}", file=sys.stderr)
    return {
        "request": name,
        "requests": len(latencies),
        "errors": len(errors),
        "req_s": len(latencies) / elapsed,
        "p50_ms": percentile_ms(latencies, 0.50) if latencies else 0.0,
        "p95_ms": percentile_ms(latencies, 0.95) if latencies else 0.0,
        "p99_ms": percentile_ms(latencies, 0.99) if latencies else 0.0,
        "cpu_ms_per_request": cpu,
        "cpu_ms_total": sum(cpu.values()),
        "rabbitmq_cpu_ms_per_request": (cpu_seconds(mq) - mq_before) * 1000 / done,
        "load_average": os.getloadavg()[0],
    }


def print_round(r: dict[str, Any]) -> None:
    top = sorted(r["cpu_ms_per_request"].items(), key=lambda kv: -kv[1])[:4]
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in top)
    print(
        f"  {r['request']:<15} {r['req_s']:7.1f} req/s  p50 {r['p50_ms']:6.1f}  p95 {r['p95_ms']:6.1f}  "
        f"p99 {r['p99_ms']:6.1f} ms  CPU/req {r['cpu_ms_total']:5.2f} ms ({parts}; +RabbitMQ "
        f"{r['rabbitmq_cpu_ms_per_request']:.2f})  errors {r['errors']}  load {r['load_average']:.1f}",
        flush=True,
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from mif_common.testing.infra import start_infra

    infra = start_infra()
    procs = Processes("mif-bench-inventory-")
    failed = True
    try:
        amqp_url = await asyncio.to_thread(infra.new_vhost)  # deleted by infra.close()
        print(f"==> database, vhost, processes (logs in {procs.tmp})", flush=True)
        base, pids = await start_suite(procs, args.admin_dsn, amqp_url)
        print("==> seeding", flush=True)
        started = time.monotonic()
        admin = await seed(base, args, args.admin_dsn)
        await outboxes_relayed(args.admin_dsn)
        print(f"    seeded in {time.monotonic() - started:.0f} s", flush=True)
        conn = await asyncpg.connect(database_dsn(args.admin_dsn, DATABASE))
        try:
            central = int(await conn.fetchval("SELECT id FROM inventory.emplacement WHERE code = 'MAG-CASA'"))
        finally:
            await conn.close()
        kinds = requests(base, args, central)
        names = list(kinds)
        rounds = []
        print(f"==> c={args.concurrency}: {args.rounds} rounds of {args.seconds:g} s per request", flush=True)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                result = await run_round(name, kinds[name], pids, admin, args)
                rounds.append(result)
                print_round(result)
        failed = False
        return {"rounds": rounds}
    finally:
        procs.close(failed=failed)
        with contextlib.suppress(Exception):
            infra.close()  # deletes the vhost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=10_000)
    parser.add_argument("--movements", type=int, default=200_000)
    parser.add_argument("--interventions", type=int, default=2_000, help="in inventory's replica, en_cours")
    parser.add_argument("--equipment", type=int, default=500, help="created through the API")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    add_admin_dsn(parser)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
