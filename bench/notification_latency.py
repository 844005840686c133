"""Event-to-notification latency: an intervention assigned at the gateway → the technician can read the
notification (and sees it on the live stream).

    .venv/bin/python bench/notification_latency.py                   # 500 assignments
    .venv/bin/python bench/notification_latency.py --assignments 100 --json out.json

Everything runs here, on loopback: a throwaway database `mif_bench_notifications` (provisioned and
migrated with the real migrations), a RabbitMQ vhost of its own (deleted at the end), auth, assets,
interventions, notifications and the gateway as uvicorn processes (one worker each, free ports, rate
limits off), and a real SMTP server (aiosmtpd, its own process) receiving the e-mails. The technician's profile is
announced with a `planning.technicien.created.v1` event (planning itself is not needed).

Then, one at a time, for each of N interventions created beforehand (not timed):
`POST /api/v1/interventions/{id}/affecter` through the gateway, and the technician polls
`GET /api/v1/notifications/user/me?limit=1` through the gateway every 10 ms until the notification of
that intervention is the newest one. Meanwhile the technician's `GET /api/v1/notifications/stream`
(SSE, through the gateway) records when each notification is pushed. The path measured is the whole
chain: interventions' transaction and outbox → relay (NOTIFY) → RabbitMQ → notifications' consumer
(replicas, notification, delivery row, pg_notify) → readable through the gateway.

Printed: p50/p95/p99/max of the assignment call, of "readable" from the moment the assignment was
sent (the figure the target applies to: p95 ≤ 150 ms) and from its answer, and of the SSE push.
Bounded: N assignments, each given at most 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import httpx
from support import (  # bench/support.py, next to this script
    PYTHON,
    Processes,
    add_admin_dsn,
    bootstrap_admin,
    cpu_seconds,
    free_port,
    login,
    provision_databases,
    wait_ready,
)

DATABASE = "mif_bench_notifications"
ADMIN_PASSWORD = "Mesure-Latence-7!xQz"  # a throwaway account in a throwaway database
SERVICES = ("auth", "assets", "interventions", "notifications")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


async def publish(amqp_url: str, event_type: str, data: dict[str, Any]) -> None:
    from mif_common.testing.events import envelope

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
        event = envelope(event_type, data)
        await exchange.publish(aio_pika.Message(event.model_dump_json().encode()), routing_key=event_type)


async def count_sent(database_url: str) -> int:
    """E-mails the SMTP server accepted, as notifications recorded them."""
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM notifications.delivery WHERE statut = 'sent'"))
    finally:
        await conn.close()


async def until(check: Any, *, limit: float, what: str, pause: float = 0.05) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(pause)
    raise RuntimeError(f"timed out waiting for {what}")


class LiveStream:
    """The technician's SSE stream: when each intervention's notification was pushed."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.pushed: dict[int, float] = {}
        self.open = asyncio.Event()
        self._changed = asyncio.Condition()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10, read=120)) as http,
            http.stream("GET", self.url, headers=self.headers) as response,
        ):
            response.raise_for_status()
            self.open.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data = json.loads(line[5:])
                    if data.get("intervention_id") is not None:
                        self.pushed.setdefault(int(data["intervention_id"]), time.perf_counter())
                        async with self._changed:
                            self._changed.notify_all()

    async def wait_pushed(self, intervention_id: int, *, within: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within), self._changed:
                await self._changed.wait_for(lambda: intervention_id in self.pushed)
        return intervention_id in self.pushed


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from mif_common.testing.infra import start_infra
    from mif_planning.testing import technicien_data

    infra = start_infra()
    procs = Processes("mif-bench-notif-")
    try:
        print(f"==> database {DATABASE}, vhost, processes (logs in {procs.tmp})", flush=True)
        urls = await provision_databases(args.admin_dsn, DATABASE, SERVICES)
        amqp_url = await asyncio.to_thread(infra.new_vhost)
        # A real SMTP server in a process of its own (it would compete with the poller for this one's GIL),
        # discarding what it receives; delivered e-mails are counted from the delivery table.
        smtp_port = free_port()
        procs.start(
            "smtp", [PYTHON, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}", "-c", "aiosmtpd.handlers.Sink"]
        )
        ports = {name: free_port() for name in (*SERVICES, "gateway")}
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        env = {
            "MIF_ENVIRONMENT": "test",
            "MIF_LOG_LEVEL": "WARNING",
            "MIF_AMQP_URL": amqp_url,
            "MIF_AUTH_URL": base["auth"],
            "MIF_ASSETS_URL": base["assets"],
            "MIF_AUTH_KEY_DIR": str(procs.tmp / "auth-keys"),
            "MIF_AUTH_ARGON2_MEMORY_KIB": "1024",  # cheap hashing: throwaway accounts
            "MIF_AUTH_ARGON2_TIME_COST": "1",
            "MIF_NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "MIF_NOTIFICATIONS_SMTP_PORT": str(smtp_port),
            "MIF_GATEWAY_RATE_LIMIT_ENABLED": "false",
            "MIF_GATEWAY_UPSTREAMS": json.dumps({name: base[name] for name in SERVICES}),
            "MIF_ADMIN_EMAIL": "bench@mif.ma",
            "MIF_ADMIN_USERNAME": "bench",
            "MIF_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **{f"MIF_{name.upper()}_DATABASE_URL": url for name, url in urls.items()},
        }
        await bootstrap_admin(env)
        started = {name: procs.uvicorn(name, f"mif_{name}.main:create_app", ports[name], env) for name in ports}
        for name, proc in started.items():
            await wait_ready(f"{base[name]}/health/live", proc)

        async with httpx.AsyncClient(base_url=base["gateway"], timeout=10) as http:
            admin = await login(http, "bench", ADMIN_PASSWORD)
            tag = uuid.uuid4().hex[:6]
            users = {}
            for role in ("responsable", "technicien"):
                body = {
                    "username": f"{role[:4]}{tag}",
                    "full_name": f"Bench {role}",
                    "email": f"{role[:4]}{tag}@bench.mif.ma",
                    "role": role,
                    "password": ADMIN_PASSWORD,
                }
                created = await http.post("/api/v1/users", json=body, headers=admin)
                created.raise_for_status()
                users[role] = {**created.json(), "headers": await login(http, body["username"], ADMIN_PASSWORD)}
            manager, tech = users["responsable"]["headers"], users["technicien"]["headers"]
            technicien_id = 1
            profile = technicien_data(technicien_id, users["technicien"]["id"])
            await publish(amqp_url, "planning.technicien.created.v1", profile)
            equipement = await http.post(
                "/api/v1/equipements",
                json={"nom": f"Banc {tag}", "type": "banc", "localisation": "Labo"},
                headers=manager,
            )
            equipement.raise_for_status()
            total = args.assignments + args.warmup + 1  # the first one waits for interventions' replica
            print(f"==> creating {total} interventions (not timed)", flush=True)
            ids: list[int] = []
            for n in range(total):
                response = await http.post(
                    "/api/v1/interventions",
                    json={"titre": f"Intervention {n}", "type": "corrective", "equipement_id": equipement.json()["id"]},
                    headers=manager,
                )
                response.raise_for_status()
                ids.append(int(response.json()["id"]))

            async def welcomed() -> bool:
                response = await http.get("/api/v1/notifications/user/me", headers=tech)
                return response.status_code == 200 and bool(response.json())

            await until(welcomed, limit=30, what="notifications to know the technician")

            async def assign_once() -> bool:
                response = await http.post(
                    f"/api/v1/interventions/{ids[0]}/affecter", json={"technicien_id": technicien_id}, headers=manager
                )
                return response.status_code == 200

            await until(assign_once, limit=30, what="interventions to know the technician")
            stream = LiveStream(f"{base['gateway']}/api/v1/notifications/stream", tech)
            await asyncio.wait_for(stream.open.wait(), 10)

            call, from_sent, from_answer, pushed = [], [], [], []
            pids = {proc.name: proc.pid for proc in procs.procs}
            cpu_before: dict[str, float] = {}
            print(f"==> {args.warmup} warm-up + {args.assignments} measured assignments, one at a time", flush=True)
            for n, iid in enumerate(ids[1:], start=1):
                sent = time.perf_counter()
                response = await http.post(
                    f"/api/v1/interventions/{iid}/affecter", json={"technicien_id": technicien_id}, headers=manager
                )
                answered = time.perf_counter()
                response.raise_for_status()
                deadline = sent + 10
                while True:
                    listed = await http.get("/api/v1/notifications/user/me?limit=1", headers=tech)
                    top = listed.json()
                    if top and top[0]["intervention_id"] == iid:
                        readable = time.perf_counter()
                        break
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"intervention {iid}: no notification within 10 s")
                    await asyncio.sleep(args.poll_ms / 1000)
                if n == args.warmup:
                    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                if n <= args.warmup:
                    continue
                call.append((answered - sent) * 1000)
                from_sent.append((readable - sent) * 1000)
                from_answer.append((readable - answered) * 1000)
                if await stream.wait_pushed(iid, within=2.0):
                    pushed.append((stream.pushed[iid] - sent) * 1000)
            cpu_ms = {
                name: (cpu_seconds(pid) - cpu_before.get(name, 0.0)) * 1000 / max(1, len(from_sent))
                for name, pid in pids.items()
            }
            stream.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await stream.task
            mails = await count_sent(urls["notifications"])

        results = {
            "assignments": len(from_sent),
            "assign_call_ms": percentiles(call),
            "readable_from_sent_ms": percentiles(from_sent),
            "readable_from_answer_ms": percentiles(from_answer),
            "sse_push_from_sent_ms": percentiles(pushed) if pushed else None,
            "emails_received": mails,
            "cpu_ms_per_assignment": cpu_ms,
            "load_average": os.getloadavg(),
        }
        return results
    finally:
        procs.stop_all()
        with contextlib.suppress(Exception):
            infra.close()  # deletes the vhost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument(
        "--poll-ms", type=float, default=10.0, help="pause between two reads of the list (each read costs CPU too)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    add_admin_dsn(parser)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print()
    print(f"{'ms':<34}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
    for key, label in (
        ("assign_call_ms", "POST .../affecter (gateway)"),
        ("readable_from_sent_ms", "readable, from assignment sent"),
        ("readable_from_answer_ms", "readable, from assignment answer"),
        ("sse_push_from_sent_ms", "SSE push, from assignment sent"),
    ):
        row = results[key]
        if row:
            print(f"{label:<34}{row['p50']:>8.1f}{row['p95']:>8.1f}{row['p99']:>8.1f}{row['max']:>8.1f}")
    p95 = results["readable_from_sent_ms"]["p95"]
    print(f"\nassignments measured: {results['assignments']}; e-mails received: {results['emails_received']}")
    cpu = ", ".join(f"{name} {ms:.1f}" for name, ms in results["cpu_ms_per_assignment"].items())
    print(f"CPU ms per assignment (polling and e-mail included): {cpu}")
    print(f"load average: {', '.join(f'{v:.2f}' for v in results['load_average'])}")
    print(f"target: p95 readable ≤ 150 ms → {'met' if p95 <= 150 else 'NOT met'} ({p95:.1f} ms)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
