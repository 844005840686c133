"""Shared by the end-to-end tests: the running suite's handles, and how to start one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from mif_auth.testing import PASSWORD
from mif_common.events import CloudEvent
from mif_common.events.queues import declare_service_queues
from mif_common.suite import built_services
from mif_common.testing.infra import Infra
from mif_common.testing.mqtt import MQTT_HOST, MQTT_PORT, broker_up
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.polling import eventually
from mif_common.testing.processes import ServiceProcess
from mif_notifications.testing import SmtpSink

ADMIN_EMAIL = "admin@e2e.mif.ma"


@dataclass
class Suite:
    gateway: ServiceProcess
    auth: ServiceProcess
    assets: ServiceProcess
    interventions: ServiceProcess
    planning: ServiceProcess
    notifications: ServiceProcess
    documents: ServiceProcess
    inventory: ServiceProcess
    reports: ServiceProcess
    # assets' MQTT ingestion worker on the broker at 127.0.0.1:1883; None when no broker answers there
    # (the tests that publish over MQTT skip then, and fail under CI: mif_common.testing.mqtt).
    assets_mqtt: ServiceProcess | None
    smtp: SmtpSink  # receives what notifications sends
    database: TestDatabase
    amqp_url: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.gateway.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    @contextlib.contextmanager
    def stopped(self, process: ServiceProcess) -> Iterator[ServiceProcess]:
        """One service down for the duration of the block, back on the same port afterwards."""
        process.stop()
        try:
            yield process
        finally:
            process.start()

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        response = httpx.post(f"{self.url}/api/v1/auth/login", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def create_user(self, admin: dict[str, str], role: str, **extra: Any) -> dict[str, Any]:
        """A user of `role` with a unique name and the test password, made through the gateway by `admin`."""
        name = f"{role[:4]}{uuid.uuid4().hex[:8]}"
        body = {
            "username": name,
            "full_name": f"{role.title()} {name}",
            "email": f"{name}@e2e.mif.ma",
            "role": role,
            "password": PASSWORD,
            **extra,
        }
        response = httpx.post(f"{self.url}/api/v1/users", json=body, headers=admin, timeout=10)
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        return user


@dataclass
class WorkerProcess(ServiceProcess):
    """A process that is not a uvicorn app but serves its own `/health/ready` on `port`: assets' MQTT
    ingestion worker (`python -m mif_assets.mqtt_worker --port <port>`), as the Procfile starts it."""

    module: str = "mif_assets.mqtt_worker"

    def launch(self) -> ServiceProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        # It binds its health port itself: the port reserved for it is let go just before.
        self._take_socket().close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", str(self.port)],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self


@contextlib.contextmanager
def running_suite(
    database: TestDatabase,
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    label: str,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[Suite]:
    """Every service and the gateway as processes on `database` and the vhost of `amqp_url`, a first admin
    made by the real bootstrap command, a real SMTP server; everything stopped at the end of the block.
    `label` names the temporary directories; `overrides` are extra (or replaced) environment variables."""
    logs = tmp_path_factory.mktemp(f"{label}-logs")
    auth = ServiceProcess("auth", "mif_auth.main:create_app", env={}, log_dir=logs)
    assets = ServiceProcess("assets", "mif_assets.main:create_app", env={}, log_dir=logs)
    interventions = ServiceProcess("interventions", "mif_interventions.main:create_app", env={}, log_dir=logs)
    planning = ServiceProcess("planning", "mif_planning.main:create_app", env={}, log_dir=logs)
    notifications = ServiceProcess("notifications", "mif_notifications.main:create_app", env={}, log_dir=logs)
    documents = ServiceProcess("documents", "mif_documents.main:create_app", env={}, log_dir=logs)
    inventory = ServiceProcess("inventory", "mif_inventory.main:create_app", env={}, log_dir=logs)
    reports = ServiceProcess("reports", "mif_reports.main:create_app", env={}, log_dir=logs)
    smtp = SmtpSink().start()
    env = {
        "MIF_ENVIRONMENT": "test",
        # PostgreSQL's max_connections (100 here) is shared by everything a test run starts: a suite on
        # each xdist worker, a suite of their own for the faults or fuzz scenarios beside one of them,
        # the workers' own engines. A process keeps 2 connections (up to 4 under a burst; its LISTEN one
        # apart), so a suite idles at ~27 and three suites fit (a full run with pools of 5 ran out).
        "MIF_DB_POOL_SIZE": "2",
        "MIF_DB_MAX_OVERFLOW": "2",
        "MIF_AMQP_URL": amqp_url,
        "MIF_AUTH_DATABASE_URL": database.url_for("auth"),
        "MIF_AUTH_KEY_DIR": str(tmp_path_factory.mktemp(f"{label}-keys")),
        "MIF_AUTH_ARGON2_MEMORY_KIB": "1024",  # cheap hashing: throwaway accounts
        "MIF_AUTH_ARGON2_TIME_COST": "1",
        "MIF_AUTH_URL": auth.url,
        "MIF_ASSETS_DATABASE_URL": database.url_for("assets"),
        "MIF_ASSETS_URL": assets.url,  # auth asks assets about client organisations it does not know yet
        "MIF_INTERVENTIONS_DATABASE_URL": database.url_for("interventions"),
        "MIF_PLANNING_URL": planning.url,  # interventions asks planning whom to assign ("Affecter" alone)
        "MIF_PLANNING_DATABASE_URL": database.url_for("planning"),
        "MIF_PLANNING_SCHEDULER_INTERVAL_SECONDS": "1",
        "MIF_NOTIFICATIONS_DATABASE_URL": database.url_for("notifications"),
        "MIF_DOCUMENTS_DATABASE_URL": database.url_for("documents"),
        "MIF_DOCUMENTS_STORAGE_DIR": str(tmp_path_factory.mktemp(f"{label}-documents")),
        "MIF_DOCUMENTS_INTERVENTIONS_URL": interventions.url,  # read-through on a replica miss
        "MIF_INVENTORY_DATABASE_URL": database.url_for("inventory"),
        "MIF_INVENTORY_INTERVENTIONS_URL": interventions.url,
        "MIF_REPORTS_DATABASE_URL": database.url_for("reports"),
        "MIF_REPORTS_EXPORTS_DIR": str(tmp_path_factory.mktemp(f"{label}-reports")),
        "MIF_REPORTS_INTERVENTIONS_URL": interventions.url,
        "MIF_REPORTS_DOCUMENTS_URL": documents.url,
        "MIF_REPORTS_JOB_POLL_INTERVAL_SECONDS": "0.2",
        # A finished export's file lives 18 s here (24 h by default), so a test sees its link stop working.
        "MIF_REPORTS_EXPIRATION_HEURES": "0.005",
        "MIF_REPORTS_EXPIRY_INTERVAL_SECONDS": "1",
        "MIF_NOTIFICATIONS_SMTP_HOST": smtp.host,
        "MIF_NOTIFICATIONS_SMTP_PORT": str(smtp.port),
        # An SMTP outage in a test is over in seconds: retry quickly.
        "MIF_NOTIFICATIONS_EMAIL_BACKOFF_BASE": "0.2",
        "MIF_NOTIFICATIONS_EMAIL_MAX_BACKOFF": "1",
        "MIF_NOTIFICATIONS_SENDER_POLL_INTERVAL": "0.2",
        "MIF_OUTBOX_POLL_INTERVAL": "0.5",
        "MIF_GATEWAY_UPSTREAMS": json.dumps(
            {
                "auth": auth.url,
                "assets": assets.url,
                "interventions": interventions.url,
                "planning": planning.url,
                "notifications": notifications.url,
                "documents": documents.url,
                "inventory": inventory.url,
                "reports": reports.url,
            }
        ),
        # Every e2e test signs in from 127.0.0.1: the per-address sign-in limit (30 per 5 min) is for real clients.
        "MIF_GATEWAY_LOGIN_PER_IP": "10000",
        # Likewise every request without a token (300 a minute per address): the contract test's anonymous
        # rows and the sign-ins of the tests beside it on one worker went past it within a minute.
        "MIF_GATEWAY_RATE_ANONYMOUS_PER_WINDOW": "100000",
        "MIF_ADMIN_EMAIL": ADMIN_EMAIL,
        "MIF_ADMIN_PASSWORD": PASSWORD,
        **(overrides or {}),
    }
    for process in (auth, assets, interventions, planning, notifications, documents, inventory, reports):
        process.env = env
    gateway = ServiceProcess("gateway", "mif_gateway.main:create_app", env=env, log_dir=logs)
    env["MIF_PLANNING_PUBLIC_URL"] = gateway.url  # calendar feed URLs point at the gateway
    services: tuple[ServiceProcess, ...] = (
        auth,
        assets,
        interventions,
        planning,
        notifications,
        documents,
        inventory,
        reports,
    )
    assets_mqtt = None
    if broker_up():
        # Its own client identifier (a persistent session per identifier: another run's worker must not
        # take over this one's), flushing often: a test waits for what it published.
        worker_env = {
            **env,
            "MIF_ASSETS_MQTT_HOST": MQTT_HOST,
            "MIF_ASSETS_MQTT_PORT": str(MQTT_PORT),
            "MIF_ASSETS_MQTT_CLIENT_ID": f"mif-e2e-{label}-{uuid.uuid4().hex[:12]}",
            "MIF_ASSETS_MQTT_FLUSH_SECONDS": "0.2",
        }
        assets_mqtt = WorkerProcess("assets-mqtt", "mif_assets.mqtt_worker", env=worker_env, log_dir=logs)
        services += (assets_mqtt,)
    services += (gateway,)
    try:
        bootstrap = subprocess.run(
            [sys.executable, "-m", "mif_auth.bootstrap"], env={**os.environ, **env}, capture_output=True, text=True
        )
        assert bootstrap.returncode == 0, bootstrap.stderr
        # As `make run`'s setup does: every queue exists before any service publishes (the first admin's
        # auth.user.created would otherwise reach nobody when auth relays it before notifications is up).
        asyncio.run(declare_service_queues(built_services(), amqp_url=amqp_url))
        # Started inside the try: if one fails to start (or the setup times out), the others are stopped.
        # Launched together, then waited for: start-up costs the slowest process, not the sum.
        for proc in services:
            proc.launch()
        for proc in services:
            proc.wait_ready()
        yield Suite(
            gateway=gateway,
            auth=auth,
            assets=assets,
            interventions=interventions,
            planning=planning,
            notifications=notifications,
            documents=documents,
            inventory=inventory,
            reports=reports,
            assets_mqtt=assets_mqtt,
            smtp=smtp,
            database=database,
            amqp_url=amqp_url,
            env=env,
        )
    finally:
        gateway.stop()
        reports.stop()
        inventory.stop()
        if assets_mqtt is not None:
            assets_mqtt.stop()
        documents.stop()
        notifications.stop()
        smtp.stop()
        planning.stop()
        interventions.stop()
        assets.stop()
        auth.stop()
        for proc in services:
            log = Path(proc.log_path)
            if log.exists() and os.environ.get("MIF_E2E_SHOW_LOGS"):
                print(f"--- {proc.name} log ---\n{proc.tail(200)}")


@contextlib.contextmanager
def own_suite(
    infra: Infra,
    fresh_database: Callable[[str], TestDatabase],
    tmp_path_factory: pytest.TempPathFactory,
    *,
    label: str,
    overrides: Mapping[str, str] | None = None,
    amqp_options: str = "",
) -> Iterator[Suite]:
    """`running_suite` on a database and a vhost of its own (for tests that kill, disconnect or change
    whatever they like); the vhost is deleted at the end of the block. `amqp_options`: query parameters
    of the services' broker URL (e.g. `reconnect_interval=1`)."""
    database = fresh_database(label)
    with infra.vhost() as amqp_url:
        env = dict(overrides or {})
        if amqp_options:
            env["MIF_AMQP_URL"] = f"{amqp_url}?{amqp_options}"
        with running_suite(database, amqp_url, tmp_path_factory, label=label, overrides=env) as suite:
            yield suite


def wait_for(check: Callable[[], Any], *, what: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """`eventually`, for these synchronous tests; events cross processes, so allow for a loaded CI. The
    check runs in a worker thread: it may run an event loop of its own (`asyncio.run`)."""
    return asyncio.run(eventually(lambda: asyncio.to_thread(check), what=what, within=timeout, interval=interval))


def post_until_created(
    suite: Suite, headers: dict[str, str], path: str, body: dict[str, Any], *, timeout: float = 30.0
) -> dict[str, Any]:
    """POST `body` to `path` through the gateway until it is created (201): a service learns of what the body
    names (a user, an equipment) by event, a moment after its owner. Meanwhile only "not known yet" answers
    (404, 422) or a 503 are accepted; the created resource is returned."""

    def attempt() -> dict[str, Any] | None:
        response = httpx.post(f"{suite.url}{path}", json=body, headers=headers, timeout=15)
        assert response.status_code in (201, 404, 422, 503), f"{path}: {response.status_code} {response.text}"
        return response.json() if response.status_code == 201 else None

    created: dict[str, Any] = wait_for(attempt, what=f"POST {path}", timeout=timeout, interval=0.2)
    return created


def event(event_type: str, data: dict[str, Any], *, subject: str | None = None) -> CloudEvent:
    """A CloudEvent as its owner's relay would send it (the source is the type's service)."""
    return CloudEvent(source=f"/mif/{event_type.split('.')[0]}", type=event_type, subject=subject, data=data)


def publish(suite: Suite, *events: CloudEvent) -> None:
    """Publish events on `mif.events` as their owners would (for facts no running service produces)."""

    async def send() -> None:
        connection = await aio_pika.connect(suite.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
            for one in events:
                await exchange.publish(
                    aio_pika.Message(
                        one.model_dump_json().encode(), content_type="application/cloudevents+json", message_id=one.id
                    ),
                    routing_key=one.type,
                )

    asyncio.run(send())
