"""Database connections (issue 14): what one process opens, what the suite opens at the defaults, and the
engine built for PgBouncer's transaction pooling (statement caches off, search_path from the role, LISTEN
on a direct connection outside the pool)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlsplit

import asyncpg
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from mif_common.config import ServiceSettings
from mif_common.db import make_engine, service_engine
from mif_common.events.outbox import notify_channel
from mif_common.events.relay import OutboxRelay
from mif_common.suite import ALL_SERVICES, service
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.polling import eventually

# PostgreSQL's default max_connections is 100; the suite with one replica each stays well under it: half of
# it, for the eight services (8 × 6 + 1 = 49: pool 5 + one LISTEN each, notifications a second LISTEN) and
# room for psql, migrations and a bench beside them. A ninth service means raising it.
SUITE_BUDGET = 50


class AuthRoleSettings(ServiceSettings):
    service_name: ClassVar[str] = "auth"  # its schema and role exist in the test database


def settings_class(name: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"{service(name).package}.config")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.service_name == name
    ]
    assert len(found) == 1, found
    return found[0]


def default_of(cls: type[ServiceSettings], field: str) -> int:
    default = cls.model_fields[field].default
    assert isinstance(default, int)
    return default


def test_the_suite_at_its_defaults_stays_well_under_postgresqls_100_connections() -> None:
    """Pool + overflow + LISTEN connections of every service, one replica each (the gateway opens none)."""
    per_service = {}
    for svc in ALL_SERVICES:
        cls = settings_class(svc.name)
        pool, overflow = default_of(cls, "db_pool_size"), default_of(cls, "db_max_overflow")
        assert pool >= 1 and 0 <= overflow <= pool, (svc.name, pool, overflow)
        per_service[svc.name] = pool + overflow + cls.listen_connections
    total = sum(per_service.values())
    assert total <= SUITE_BUDGET, per_service
    assert per_service["notifications"] == per_service["auth"] + 1  # its live stream listens too
    # The same sum as each process computes it for itself.
    settings = AuthRoleSettings(database_url="postgresql+asyncpg://mif_auth@db/mif")
    assert settings.max_db_connections == per_service["auth"]


async def test_pool_size_and_overflow_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIF_DB_POOL_SIZE", "6")  # suite-wide
    monkeypatch.setenv("MIF_AUTH_DB_MAX_OVERFLOW", "3")  # this service only
    settings = settings_class("auth")()
    assert (settings.db_pool_size, settings.db_max_overflow, settings.max_db_connections) == (6, 3, 10)
    engine = service_engine(settings)
    assert (engine.pool.size(), engine.pool._max_overflow) == (6, 3)  # type: ignore[attr-defined]
    await engine.dispose()


def test_pgbouncer_needs_a_direct_url_for_listen() -> None:
    url = "postgresql+asyncpg://mif_auth:pw@pgbouncer:6432/mif"
    with pytest.raises(ValidationError, match="DIRECT_DATABASE_URL"):
        AuthRoleSettings(database_url=url, db_pgbouncer=True)
    direct = "postgresql+asyncpg://mif_auth:pw@postgres:5432/mif"
    behind = AuthRoleSettings(database_url=url, db_pgbouncer=True, direct_database_url=direct)
    assert behind.direct_database_url == direct
    assert AuthRoleSettings(database_url=url).direct_database_url == url  # no pooler: LISTEN on the same URL


async def session_facts(engine: Any) -> dict[str, Any]:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        facts = {
            "sqlalchemy_cache": raw.dbapi_connection._prepared_statement_cache,
            "asyncpg_cache_size": raw.driver_connection._stmt_cache.get_max_size(),
            "statement_name": raw.dbapi_connection._prepared_statement_name_func(),
            "search_path": await conn.scalar(sa.text("SHOW search_path")),
            "application_name": await conn.scalar(sa.text("SHOW application_name")),
            # The same statement twice, and an ORM-free table of the schema through search_path alone.
            "twice": [await conn.scalar(sa.text("SELECT 41 + :n"), {"n": n}) for n in (1, 1)],
            "own_table": await conn.scalar(sa.text("SELECT count(*) >= 0 FROM alembic_version")),
        }
    async with engine.connect() as conn:  # interventions' read path: AUTOCOMMIT
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        facts["autocommit"] = await conn.scalar(sa.text("SELECT 1"))
    return facts


async def test_an_engine_behind_pgbouncer_has_the_statement_caches_off(mif_database: TestDatabase) -> None:
    url = mif_database.url_for("auth")
    settings = AuthRoleSettings(database_url=url, db_pgbouncer=True, direct_database_url=url)
    engine = service_engine(settings)
    try:
        facts = await session_facts(engine)
    finally:
        await engine.dispose()
    assert facts["sqlalchemy_cache"] is None  # SQLAlchemy's prepared-statement cache
    assert facts["asyncpg_cache_size"] == 0  # asyncpg's statement cache
    assert facts["statement_name"] == ""  # what SQLAlchemy still prepares is unnamed (one exchange, one server)
    # search_path was not sent at connection start (PgBouncer refuses it): the role's default gives it.
    assert facts["search_path"] == "auth"
    assert facts["application_name"] == "mif-auth"
    assert facts["twice"] == [42, 42] and facts["own_table"] is True and facts["autocommit"] == 1


async def test_a_direct_engine_keeps_its_caches(mif_database: TestDatabase) -> None:
    engine = make_engine(mif_database.url_for("auth"), schema="auth", pool_size=1, max_overflow=0)
    try:
        facts = await session_facts(engine)
    finally:
        await engine.dispose()
    assert facts["sqlalchemy_cache"] is not None and facts["asyncpg_cache_size"] > 0
    assert facts["search_path"] == "auth"


class _NoBroker:
    """The relay's LISTEN alone is exercised here; nothing is published."""


async def test_the_relay_listens_on_a_direct_connection_outside_the_pool(mif_database: TestDatabase) -> None:
    """LISTEN takes no connection of the pool (a pool of one stays free) and goes to `listen_url`."""
    url = mif_database.url_for("auth")
    engine = make_engine(url, schema="auth", pool_size=1, max_overflow=0, pgbouncer=True)
    relay = OutboxRelay(engine=engine, broker=_NoBroker(), service="auth", listen_url=url)  # type: ignore[arg-type]
    admin = await asyncpg.connect(mif_database.dsn)
    listener = asyncio.create_task(relay._listen())
    try:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'mif-auth-listen' AND query LIKE 'LISTEN%'"
        )
        await eventually(lambda: admin.fetchval(query), what="the relay's LISTEN", within=5.0, interval=0.01)
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        relay._wake.clear()
        async with engine.begin() as conn:  # the pool's only connection: free
            await conn.execute(sa.select(sa.func.pg_notify(notify_channel("auth"), "")))
        await asyncio.wait_for(relay._wake.wait(), 5)
    finally:
        listener.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listener
        await engine.dispose()

    async def listening_gone() -> bool:  # closed when the relay stops
        return not await admin.fetchval(query)

    await eventually(listening_gone, what="the LISTEN connection to close with the relay", within=2.0, interval=0.01)
    await admin.close()


# A real PgBouncer in transaction mode (`apt-get install pgbouncer`: deploy/local/test.sh installs it),
# configured from deploy/k8s/base/pgbouncer.ini.template, with 2 server connections for many clients.

TEMPLATE = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "base" / "pgbouncer.ini.template"


def _cannot_run_pgbouncer(reason: str) -> NoReturn:
    """Skipped on a developer's machine without it; under CI a missing PgBouncer is a failure, not a skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: deploy/local/test.sh installs Debian's pgbouncer package")
    pytest.skip(reason)


@pytest.fixture
def pgbouncer(tmp_path: Path, mif_database: TestDatabase) -> Iterator[str]:
    """The address (host:port) of a PgBouncer in front of the test database's server."""
    binary = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )
    if binary is None:
        _cannot_run_pgbouncer("no pgbouncer on this machine")
    user: list[str] = []
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _cannot_run_pgbouncer("running as root and no 'postgres' user for PgBouncer")
        user = ["-u", "postgres"]
    server = urlsplit(mif_database.admin_dsn)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ini = TEMPLATE.read_text().replace("@DB_HOST@", server.hostname or "127.0.0.1")
    ini = ini.replace("@DB_PORT@", str(server.port or 5432))
    local = {  # loopback, the local server's trust authentication, few server connections
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "auth_type": "trust",
        "auth_file": str(tmp_path / "userlist.txt"),
        "default_pool_size": "2",
    }
    for key, value in local.items():
        ini = re.sub(rf"^{key} = .*$", f"{key} = {value}", ini, flags=re.M)
    assert "pool_mode = transaction" in ini
    (tmp_path / "pgbouncer.ini").write_text(ini)
    (tmp_path / "userlist.txt").write_text(f'"{service("auth").db_role}" ""\n')
    tmp_path.chmod(0o755)
    process = subprocess.Popen(
        [binary, *user, str(tmp_path / "pgbouncer.ini")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_service_engine_works_through_pgbouncer_in_transaction_mode(
    pgbouncer: str, mif_database: TestDatabase
) -> None:
    """Transactions, AUTOCOMMIT reads (through SQLAlchemy and on the asyncpg connection itself) from
    more clients than server connections, and a NOTIFY sent through PgBouncer reaching the relay's LISTEN
    on the direct URL. Without the PgBouncer setting the engine is refused (search_path at start)."""
    direct = mif_database.url_for("auth")
    via = direct.replace(direct.split("@", 1)[1].split("/", 1)[0], pgbouncer)
    plain = make_engine(via, schema="auth", pool_size=1, max_overflow=0)
    with pytest.raises(sa.exc.DBAPIError, match="search_path"):
        async with plain.connect() as conn:
            await conn.scalar(sa.text("SELECT 1"))
    await plain.dispose()

    settings = AuthRoleSettings(database_url=via, db_pgbouncer=True, direct_database_url=direct)
    engine = service_engine(settings)
    relay = OutboxRelay(engine=engine, broker=_NoBroker(), service="auth", listen_url=settings.direct_database_url)  # type: ignore[arg-type]
    listener = asyncio.create_task(relay._listen())

    async def transactions(n: int) -> None:
        for _ in range(15):
            async with engine.begin() as conn:
                assert await conn.scalar(sa.text("SHOW search_path")) == "auth"
                await conn.scalar(sa.text('SELECT count(*) FROM "user" WHERE id > :n'), {"n": n})
                await conn.scalar(sa.text("SELECT CAST(:n AS int) + 1"), {"n": n})

    async def autocommit_reads(n: int) -> None:
        for _ in range(15):
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.scalar(sa.text('SELECT count(*) FROM "user" WHERE id > :n'), {"n": n})
                driver = (await conn.get_raw_connection()).driver_connection
                assert await driver.fetchval("SELECT $1::int", n) == n  # type: ignore[union-attr]

    try:
        await asyncio.gather(*(transactions(n) for n in range(4)), *(autocommit_reads(n) for n in range(4)))
        # The relay's LISTEN is in place once it woke itself.
        await eventually(relay._wake.is_set, what="the relay's LISTEN", within=5.0)
        relay._wake.clear()
        async with engine.begin() as conn:  # through PgBouncer
            await conn.execute(sa.select(sa.func.pg_notify(notify_channel("auth"), "")))
        await asyncio.wait_for(relay._wake.wait(), 5)
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await engine.dispose()
