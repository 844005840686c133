"""Database provisioning: one schema and one login role per service, nothing shared.

A service's role owns its schema and has no privilege on the others, so a bug or a leaked password
in one service cannot read another's data. Used by the run command and the test plugin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import asyncpg

from mif_common.suite import ServiceInfo

# Serialises provisioning across processes (roles are cluster-wide).
_PROVISION_LOCK = 7_215_001


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def ensure_database(admin_dsn: str, database: str, *, recreate: bool = False) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK)
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists and recreate:
            await conn.execute(f"DROP DATABASE {_quote_ident(database)} WITH (FORCE)")
            exists = None
        if not exists:
            await conn.execute(f"CREATE DATABASE {_quote_ident(database)}")
        await conn.execute(f"REVOKE ALL ON DATABASE {_quote_ident(database)} FROM PUBLIC")
    finally:
        await conn.close()


async def ensure_service_roles(
    admin_dsn: str, database: str, services: Iterable[ServiceInfo], passwords: dict[str, str] | None = None
) -> None:
    """Create each service's role and schema in `database` (idempotent)."""
    passwords = passwords or {}
    cluster = await asyncpg.connect(admin_dsn)
    try:
        await cluster.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK)
        for svc in services:
            role = _quote_ident(svc.db_role)
            password = passwords.get(svc.name)
            if not await cluster.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", svc.db_role):
                await cluster.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
            if password:
                await cluster.execute(f"ALTER ROLE {role} PASSWORD {_quote_literal(password)}")
            await cluster.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_quote_ident(database)} TO {role}")
    finally:
        await cluster.close()
    db_dsn = admin_dsn.rsplit("/", 1)[0] + "/" + database
    conn = await asyncpg.connect(db_dsn)
    try:
        # Extensions need a superuser; services use them from the public schema.
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for svc in services:
            await conn.execute(
                f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(svc.schema)} AUTHORIZATION {_quote_ident(svc.db_role)}"
            )
            await conn.execute(f"REVOKE ALL ON SCHEMA {_quote_ident(svc.schema)} FROM PUBLIC")
            # The role's own search_path in this database: what a connection gets when it cannot say it at
            # start (through PgBouncer, mif_common.db.make_engine); the same as what services send directly.
            await conn.execute(
                f"ALTER ROLE {_quote_ident(svc.db_role)} IN DATABASE {_quote_ident(database)} "
                f"SET search_path = {_quote_ident(svc.schema)}"
            )
    finally:
        await conn.close()


def service_database_url(host_dsn: str, database: str, svc: ServiceInfo, password: str | None = None) -> str:
    """`postgresql+asyncpg://mif_<svc>[:pw]@host:port/<database>` from an admin DSN's host part."""
    hostpart = host_dsn.split("@", 1)[1].rsplit("/", 1)[0] if "@" in host_dsn else "127.0.0.1:5432"
    auth = svc.db_role + (f":{password}" if password else "")
    return f"postgresql+asyncpg://{auth}@{hostpart}/{database}"


def provision(admin_dsn: str, database: str, services: Iterable[ServiceInfo], *, recreate: bool = False) -> None:
    services = list(services)

    async def run() -> None:
        await ensure_database(admin_dsn, database, recreate=recreate)
        await ensure_service_roles(admin_dsn, database, services)

    asyncio.run(run())
