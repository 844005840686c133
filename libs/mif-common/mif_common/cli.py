"""Operator commands: `python -m mif_common.cli setup`, `python -m mif_common.cli replay-dlq <service>`.

`setup` creates the database, one role and schema per built service, runs every built service's
migrations as that service's own role, and declares every service's event queue on the broker (so
no event published before a service's first start is lost). Idempotent: the run command calls it at
every start.

Environment: MIF_ADMIN_DSN (superuser, default postgresql://postgres@127.0.0.1:5432/postgres),
MIF_DATABASE_NAME (default mif), MIF_<SVC>_DB_PASSWORD (optional role passwords),
MIF_<SVC>_DATABASE_URL (optional; else derived from the admin DSN's host).

`replay-dlq <service> [--limit N]` sends the events parked in the service's dead-letter queue
(`mif.<service>.dlq`) back to that service's queue, once the cause is fixed; the service's inbox keeps
each effect single. It reads the broker from the service's own variables (`MIF_<SVC>_AMQP_URL`, then
`MIF_AMQP_URL`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from aio_pika.exceptions import AMQPError

from mif_common.events.dead_letters import replay_dead_letters
from mif_common.events.queues import consumer_settings, declare_service_queues
from mif_common.events.topology import consumer_queue_name
from mif_common.migrations import upgrade
from mif_common.provision import ensure_database, ensure_service_roles, service_database_url
from mif_common.suite import ServiceInfo, built_services

DEFAULT_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _password(svc: ServiceInfo) -> str | None:
    return os.environ.get(f"MIF_{svc.name.upper()}_DB_PASSWORD") or None


def database_url(svc: ServiceInfo, admin_dsn: str, database: str) -> str:
    return os.environ.get(f"MIF_{svc.name.upper()}_DATABASE_URL") or service_database_url(
        admin_dsn, database, svc, _password(svc)
    )


def setup(admin_dsn: str, database: str) -> None:
    services = built_services()
    passwords = {s.name: p for s in services if (p := _password(s))}

    async def provision() -> None:
        await ensure_database(admin_dsn, database)
        await ensure_service_roles(admin_dsn, database, services, passwords)

    asyncio.run(provision())
    for svc in services:
        upgrade(svc.alembic_ini, database_url(svc, admin_dsn, database))
        print(f"  {svc.name}: schema '{svc.schema}' migrated (role {svc.db_role})")
    try:
        queues = asyncio.run(declare_service_queues(services))
    except (OSError, TimeoutError, AMQPError) as exc:
        # Not fatal: each service declares its own queue when it starts; only the head start is lost.
        print(f"  RabbitMQ not reachable, event queues left to the services: {exc!r}", file=sys.stderr)
    else:
        print(f"  event queues declared: {', '.join(queues)}")


def replay_dlq(service: str, *, limit: int | None) -> int:
    """The `replay-dlq` command, on the service's own broker (`MIF_<SVC>_AMQP_URL`, then `MIF_AMQP_URL`)."""
    svc = next(s for s in built_services() if s.name == service)
    queue = consumer_queue_name(service)
    try:
        moved = asyncio.run(replay_dead_letters(consumer_settings(svc).amqp_url, queue, limit=limit))
    except (OSError, TimeoutError, AMQPError) as exc:
        print(f"Cannot replay {queue}.dlq: {exc!r}", file=sys.stderr)
        return 1
    print(f"{moved} message(s) moved from {queue}.dlq back to {queue}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mif_common.cli", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="create database, roles, schemas; run migrations")
    names = sorted(s.name for s in built_services())
    replay = sub.add_parser("replay-dlq", help="send a service's dead-lettered events back to it")
    replay.add_argument("service", choices=names)
    replay.add_argument("--limit", type=int, default=None, help="at most this many messages (default: all)")
    args = parser.parse_args(argv)
    if args.command == "replay-dlq":
        return replay_dlq(args.service, limit=args.limit)
    if args.command == "setup":
        admin_dsn = os.environ.get("MIF_ADMIN_DSN", DEFAULT_ADMIN_DSN)
        database = os.environ.get("MIF_DATABASE_NAME", "mif")
        print(f"Setting up database '{database}'")
        try:
            setup(admin_dsn, database)
        except OSError as exc:
            print(f"PostgreSQL is not reachable through MIF_ADMIN_DSN: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
