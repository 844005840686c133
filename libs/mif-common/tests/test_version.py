"""Which build answered: `/health/live` and the `X-MIF-Version` header of every answer (issue 20)."""

from __future__ import annotations

import subprocess
from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter, Response

from mif_common.app import ServiceParts, create_service_app
from mif_common.config import ServiceSettings
from mif_common.suite import REPO_ROOT
from mif_common.version import build_info

probe = APIRouter(prefix="/api/v1/probe")


@probe.get("/relayed")
async def relayed(response: Response) -> dict[str, str]:
    response.headers["X-MIF-Version"] = "assets/9.9.9+abc"  # as an answer relayed by the gateway carries
    return {}


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "interventions"


@pytest.fixture
async def client() -> httpx.AsyncClient:
    app = create_service_app(
        ProbeSettings(environment="test", background_tasks=False, log_json=False),
        ServiceParts(title="probe", description="probe", routers=[probe]),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_the_build_is_the_package_version_and_the_checkout_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    build = build_info("interventions")
    assert (build.name, build.version, build.commit) == ("interventions", "0.1.0", head)
    assert build.header == f"interventions/0.1.0+{head}"
    build_info.cache_clear()
    monkeypatch.setenv("MIF_GIT_COMMIT", "0123456789ab")  # what the image's build argument sets
    try:
        assert build_info("gateway").commit == "0123456789ab"
    finally:
        build_info.cache_clear()


async def test_live_and_every_answer_say_which_build(client: httpx.AsyncClient) -> None:
    build = build_info("interventions")
    live = await client.get("/health/live")
    assert live.json() == {"status": "ok", "service": "interventions", "version": "0.1.0", "commit": build.commit}
    assert live.headers["x-mif-version"] == build.header
    missing = await client.get("/api/v1/nowhere")
    assert missing.status_code == 404 and missing.headers["x-mif-version"] == build.header
    # An answer that already names its build keeps it (the gateway relays the service's own).
    kept = await client.get("/api/v1/probe/relayed")
    assert kept.headers.get_list("x-mif-version") == ["assets/9.9.9+abc"]
