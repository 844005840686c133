"""`python -m mif_common.cli setup` (what `make run` calls at every start) and the command line itself:
a database of its own, every built service's role, schema and migrations, every queue on a vhost of its
own; run twice (idempotent); PostgreSQL or RabbitMQ unreachable."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aio_pika
import asyncpg
import pytest

from mif_common.cli import main
from mif_common.events.catalogue.discovery import service_consumer
from mif_common.provision import service_database_url
from mif_common.suite import built_services
from mif_common.testing.infra import Infra
from mif_common.testing.plugin import TestDatabase, worker_namespace


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _versions(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            svc.name: await conn.fetchval(f'SELECT version_num FROM "{svc.schema}".alembic_version')
            for svc in built_services()
        }
    finally:
        await conn.close()


async def _queue_exists(amqp_url: str, name: str) -> bool:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        try:
            await channel.declare_queue(name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return True


@pytest.fixture
def cli_database(mif_infra: Infra, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"mif_test_{worker_namespace()}_cli"
    monkeypatch.setenv("MIF_ADMIN_DSN", mif_infra.admin_dsn)
    monkeypatch.setenv("MIF_DATABASE_NAME", name)
    for svc in built_services():  # what the command derives itself, not a URL the environment gives
        monkeypatch.delenv(f"MIF_{svc.name.upper()}_DATABASE_URL", raising=False)
        monkeypatch.delenv(f"MIF_{svc.name.upper()}_DB_PASSWORD", raising=False)
        monkeypatch.delenv(f"MIF_{svc.name.upper()}_AMQP_URL", raising=False)
    yield name

    async def drop() -> None:
        conn = await asyncpg.connect(mif_infra.admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture
def cli_vhost(mif_infra: Infra) -> Iterator[str]:
    """A vhost of its own, gone after the test (the setup declares every service's quorum queues)."""
    with mif_infra.vhost() as url:
        yield url


def test_setup_provisions_migrates_and_declares_every_queue_idempotently(
    cli_database: str,
    cli_vhost: str,
    mif_infra: Infra,
    mif_database: TestDatabase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    vhost = cli_vhost
    monkeypatch.setenv("MIF_AMQP_URL", vhost)
    services = built_services()
    for _ in range(2):  # `make run` calls it at every start
        assert main(["setup"]) == 0
        out = capsys.readouterr().out
        assert f"Setting up database '{cli_database}'" in out
        for svc in services:
            assert f"  {svc.name}: schema '{svc.schema}' migrated (role {svc.db_role})" in out
        queues = [c.queue for svc in services if (c := service_consumer(svc)) is not None]
        assert f"  event queues declared: {', '.join(queues)}" in out

    # Every schema at the same head as the test database (migrated by the plugin the same way).
    dsn = mif_infra.admin_dsn.rsplit("/", 1)[0] + "/" + cli_database
    assert asyncio.run(_versions(dsn)) == asyncio.run(_versions(mif_database.dsn))
    for queue in queues:
        assert asyncio.run(_queue_exists(vhost, queue)), queue

    # Each service's own role reaches its own schema by default (search_path), and only that.
    async def as_service(svc_name: str) -> str:
        svc = next(s for s in services if s.name == svc_name)
        url = service_database_url(mif_infra.admin_dsn, cli_database, svc).replace("postgresql+asyncpg", "postgresql")
        conn = await asyncpg.connect(url)
        try:
            return str(await conn.fetchval("SELECT current_schema()"))
        finally:
            await conn.close()

    assert asyncio.run(as_service("planning")) == "planning"

    # The same command line sends dead-lettered events back (none here).
    assert main(["replay-dlq", "planning", "--limit", "3"]) == 0
    assert "0 message(s) moved from mif.planning.dlq back to mif.planning" in capsys.readouterr().out


def test_setup_without_rabbitmq_still_migrates(
    cli_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIF_AMQP_URL", f"amqp://guest:guest@127.0.0.1:{closed_port()}/")
    assert main(["setup"]) == 0  # each service declares its own queue when it starts
    captured = capsys.readouterr()
    assert "migrated" in captured.out
    assert "RabbitMQ not reachable, event queues left to the services" in captured.err
    assert "event queues declared" not in captured.out

    assert main(["replay-dlq", "planning"]) == 1
    assert "Cannot replay mif.planning.dlq" in capsys.readouterr().err


def test_setup_without_postgresql_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MIF_ADMIN_DSN", f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    monkeypatch.setenv("MIF_DATABASE_NAME", "never_created")
    assert main(["setup"]) == 1
    assert "PostgreSQL is not reachable through MIF_ADMIN_DSN" in capsys.readouterr().err


def test_the_command_line_refuses_unknown_commands_and_services(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["replay-dlq", "nowhere"])
    assert "invalid choice: 'nowhere'" in capsys.readouterr().err
