"""Shared by the end-to-end tests: the running suite's handles."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from mif_auth.testing import PASSWORD
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.processes import ServiceProcess

ADMIN_EMAIL = "admin@e2e.mif.ma"


@dataclass
class Suite:
    gateway: ServiceProcess
    auth: ServiceProcess
    assets: ServiceProcess
    database: TestDatabase
    amqp_url: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.gateway.url

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        response = httpx.post(f"{self.url}/api/v1/auth/login", data={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}
