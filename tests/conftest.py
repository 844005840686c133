"""End-to-end fixtures: the real auth and assets services and the gateway as processes on free ports,
a database and a RabbitMQ vhost of their own, a first admin made by the real bootstrap command."""

from __future__ import annotations

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
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.processes import ServiceProcess
from tests.support import ADMIN_EMAIL, Suite


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
    env = {
        "MIF_ENVIRONMENT": "test",
        "MIF_AMQP_URL": mif_amqp_url,
        "MIF_AUTH_DATABASE_URL": database.url_for("auth"),
        "MIF_AUTH_KEY_DIR": str(tmp_path_factory.mktemp("e2e-keys")),
        "MIF_AUTH_BCRYPT_ROUNDS": "4",
        "MIF_AUTH_URL": auth.url,
        "MIF_ASSETS_DATABASE_URL": database.url_for("assets"),
        "MIF_ASSETS_URL": assets.url,  # auth asks assets about client organisations it does not know yet
        "MIF_OUTBOX_POLL_INTERVAL": "0.5",
        # planning is not built yet: a dead port stands for "a service that is down".
        "MIF_GATEWAY_UPSTREAMS": json.dumps({"auth": auth.url, "assets": assets.url, "planning": "http://127.0.0.1:9"}),
        "MIF_ADMIN_EMAIL": ADMIN_EMAIL,
        "MIF_ADMIN_PASSWORD": PASSWORD,
    }
    auth.env = assets.env = env
    gateway = ServiceProcess("gateway", "mif_gateway.main:create_app", env=env, log_dir=logs)
    bootstrap = subprocess.run(
        [sys.executable, "-m", "mif_auth.bootstrap"], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    auth.start()
    assets.start()
    gateway.start()
    try:
        yield Suite(gateway=gateway, auth=auth, assets=assets, database=database, amqp_url=mif_amqp_url, env=env)
    finally:
        gateway.stop()
        assets.stop()
        auth.stop()
        for proc in (auth, assets, gateway):
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
