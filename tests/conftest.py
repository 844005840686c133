"""End-to-end fixtures: the real auth, assets, interventions, planning, documents and notifications services and the
gateway as processes on free ports, a database and a RabbitMQ vhost of their own, a first admin made by
the real bootstrap command, a real SMTP server receiving the notifications' e-mails."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mif_auth.testing import PASSWORD
from mif_common.events.queues import declare_service_queues
from mif_common.suite import built_services
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.processes import ServiceProcess
from mif_notifications.testing import SmtpSink
from tests.support import ADMIN_EMAIL, Suite


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """All end-to-end tests share one running suite: keep them on one xdist worker (--dist loadgroup)."""
    for item in items:
        if item.get_closest_marker("e2e") is not None:
            item.add_marker(pytest.mark.xdist_group("e2e"))


@pytest.fixture(scope="session")
def suite(
    mif_fresh_database: Callable[[str], TestDatabase],
    mif_amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Suite]:
    database = mif_fresh_database("e2e")
    logs = tmp_path_factory.mktemp("e2e-logs")
    auth = ServiceProcess("auth", "mif_auth.main:create_app", env={}, log_dir=logs)
    assets = ServiceProcess("assets", "mif_assets.main:create_app", env={}, log_dir=logs)
    interventions = ServiceProcess("interventions", "mif_interventions.main:create_app", env={}, log_dir=logs)
    planning = ServiceProcess("planning", "mif_planning.main:create_app", env={}, log_dir=logs)
    notifications = ServiceProcess("notifications", "mif_notifications.main:create_app", env={}, log_dir=logs)
    documents = ServiceProcess("documents", "mif_documents.main:create_app", env={}, log_dir=logs)
    smtp = SmtpSink().start()
    env = {
        "MIF_ENVIRONMENT": "test",
        "MIF_AMQP_URL": mif_amqp_url,
        "MIF_AUTH_DATABASE_URL": database.url_for("auth"),
        "MIF_AUTH_KEY_DIR": str(tmp_path_factory.mktemp("e2e-keys")),
        "MIF_AUTH_BCRYPT_ROUNDS": "4",
        "MIF_AUTH_URL": auth.url,
        "MIF_ASSETS_DATABASE_URL": database.url_for("assets"),
        "MIF_ASSETS_URL": assets.url,  # auth asks assets about client organisations it does not know yet
        "MIF_INTERVENTIONS_DATABASE_URL": database.url_for("interventions"),
        "MIF_PLANNING_URL": planning.url,  # interventions asks planning whom to assign ("Affecter" alone)
        "MIF_PLANNING_DATABASE_URL": database.url_for("planning"),
        "MIF_PLANNING_SCHEDULER_INTERVAL_SECONDS": "1",
        "MIF_NOTIFICATIONS_DATABASE_URL": database.url_for("notifications"),
        "MIF_DOCUMENTS_DATABASE_URL": database.url_for("documents"),
        "MIF_DOCUMENTS_STORAGE_DIR": str(tmp_path_factory.mktemp("e2e-documents")),
        "MIF_DOCUMENTS_INTERVENTIONS_URL": interventions.url,  # read-through on a replica miss
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
            }
        ),
        # Every e2e test signs in from 127.0.0.1: the per-address sign-in limit (30 per 5 min) is for real clients.
        "MIF_GATEWAY_LOGIN_PER_IP": "10000",
        "MIF_ADMIN_EMAIL": ADMIN_EMAIL,
        "MIF_ADMIN_PASSWORD": PASSWORD,
    }
    auth.env = assets.env = interventions.env = planning.env = notifications.env = documents.env = env
    gateway = ServiceProcess("gateway", "mif_gateway.main:create_app", env=env, log_dir=logs)
    env["MIF_PLANNING_PUBLIC_URL"] = gateway.url  # calendar feed URLs point at the gateway
    bootstrap = subprocess.run(
        [sys.executable, "-m", "mif_auth.bootstrap"], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    # As `make run`'s setup does: every queue exists before any service publishes (the first admin's
    # auth.user.created would otherwise reach nobody when auth relays it before notifications is up).
    asyncio.run(declare_service_queues(built_services(), amqp_url=mif_amqp_url))
    try:
        # Started inside the try: if one fails to start (or the setup times out), the others are stopped.
        # Launched together, then waited for: start-up costs the slowest process, not the sum.
        services = (auth, assets, interventions, planning, notifications, documents, gateway)
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
            smtp=smtp,
            database=database,
            amqp_url=mif_amqp_url,
            env=env,
        )
    finally:
        gateway.stop()
        documents.stop()
        notifications.stop()
        smtp.stop()
        planning.stop()
        interventions.stop()
        assets.stop()
        auth.stop()
        for proc in (auth, assets, interventions, planning, notifications, documents, gateway):
            log = Path(proc.log_path)
            if log.exists() and os.environ.get("MIF_E2E_SHOW_LOGS"):
                print(f"--- {proc.name} log ---\n{proc.tail(200)}")


@pytest.fixture(scope="session")
def admin_headers(suite: Suite) -> dict[str, str]:
    return suite.login(ADMIN_EMAIL)


@pytest.fixture
def create_user(suite: Suite, admin_headers: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Create a user through the gateway as the bootstrap admin; returns the user and its headers."""
    import uuid

    def make(role: str, **extra: Any) -> dict[str, Any]:
        name = f"{role[:4]}{uuid.uuid4().hex[:8]}"
        body = {
            "username": name,
            "full_name": f"{role.title()} {name}",
            "email": f"{name}@e2e.mif.ma",
            "role": role,
            "password": PASSWORD,
            **extra,
        }
        response = httpx.post(f"{suite.url}/api/v1/users", json=body, headers=admin_headers)
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        user["headers"] = suite.login(name)
        return user

    return make
