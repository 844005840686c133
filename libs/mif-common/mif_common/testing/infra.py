"""Where the test PostgreSQL and RabbitMQ are: the local servers, or testcontainers on demand."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote


@dataclass
class Infra:
    admin_dsn: str  # superuser DSN to the maintenance database (postgresql://...)
    amqp_base: str  # amqp://user:pass@host:port
    run_rabbitmqctl: Callable[[list[str]], None]
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()

    def new_vhost(self) -> str:
        """A fresh vhost for this test session (deleted when the session ends); its AMQP URL."""
        vhost = self._add_vhost()
        self._cleanups.append(lambda: self.run_rabbitmqctl(["delete_vhost", vhost]))
        return f"{self.amqp_base}/{quote(vhost, safe='')}"

    @contextlib.contextmanager
    def vhost(self) -> Iterator[str]:
        """A fresh vhost deleted as soon as the block ends; its AMQP URL. For a whole suite's queues:
        each quorum queue holds about three of the broker's file handles (a local RabbitMQ often has
        fewer than a thousand), so a module's vhost must not live until the end of the session."""
        vhost = self._add_vhost()
        try:
            yield f"{self.amqp_base}/{quote(vhost, safe='')}"
        finally:
            self.run_rabbitmqctl(["delete_vhost", vhost])

    def _add_vhost(self) -> str:
        vhost = f"mif-test-{uuid.uuid4().hex[:10]}"
        self.run_rabbitmqctl(["add_vhost", vhost])
        self.run_rabbitmqctl(["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"])
        return vhost


def _local_rabbitmqctl(args: list[str]) -> None:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)  # noqa: S603 - fixed argv


def start_infra() -> Infra:
    if os.environ.get("MIF_TEST_CONTAINERS") == "1":
        return _containers()
    return Infra(
        admin_dsn=os.environ.get("MIF_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
        amqp_base=os.environ.get("MIF_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672"),
        run_rabbitmqctl=_local_rabbitmqctl,
    )


def _containers() -> Infra:  # pragma: no cover - needs a Docker engine
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer

    pg = PostgresContainer("postgres:15-alpine", username="postgres", password="postgres", dbname="postgres")
    # Service roles log in without passwords, as with the local server's trust authentication.
    pg.with_env("POSTGRES_HOST_AUTH_METHOD", "trust")
    pg.start()
    mq = RabbitMqContainer("rabbitmq:3.13-alpine")
    mq.start()

    def ctl(args: list[str]) -> None:
        code, out = mq.get_wrapped_container().exec_run(["rabbitmqctl", "-q", *args])
        if code != 0:
            raise RuntimeError(out.decode())

    host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
    infra = Infra(
        admin_dsn=f"postgresql://postgres:postgres@{host}:{port}/postgres",
        amqp_base=f"amqp://guest:guest@{mq.get_container_host_ip()}:{mq.get_exposed_port(5672)}",
        run_rabbitmqctl=ctl,
    )
    infra._cleanups.extend([pg.stop, mq.stop])
    return infra
