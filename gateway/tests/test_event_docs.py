"""`/asyncapi.json` and `/docs/events`: the checked-in event catalogue, served offline (no CDN)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mif_gateway.config import GatewaySettings
from mif_gateway.docs import merge_documents
from mif_gateway.main import create_app
from mif_gateway.policy import DEFAULT_POLICY

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "events" / "asyncapi.json"


def settings(**overrides: Any) -> GatewaySettings:
    return GatewaySettings(environment="test", revocation_enabled=False, log_json=False, **overrides)


async def client_for(gateway_settings: GatewaySettings) -> httpx.AsyncClient:
    # No lifespan needed: these routes do no I/O but reading the file.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway_settings)), base_url="http://gw")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(settings()) as c:
        yield c


def test_the_default_path_is_the_checked_in_document() -> None:
    assert settings().asyncapi_path.resolve() == CHECKED_IN
    assert CHECKED_IN.is_file()


async def test_asyncapi_document_is_served_as_checked_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == CHECKED_IN.read_bytes()
    document = response.json()
    assert document["asyncapi"] == "3.0.0"
    assert "interventions.intervention.closed.v1" in document["channels"]


async def test_events_page_lists_types_publishers_consumers_and_schemas(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    document = json.loads(CHECKED_IN.read_text(encoding="utf-8"))
    for event_type in document["channels"]:
        assert f'<section id="event-{event_type}">' in page
    # The summary row of one type: publisher, then its consumers.
    row = page.split('<a href="#event-assets.client.created.v1">', 1)[1].split("</tr>", 1)[0]
    assert "<td>assets</td>" in row and "<td>auth, reports</td>" in row
    section = page.split('<section id="event-auth.user.deactivated.v1">', 1)[1].split("</section>", 1)[0]
    assert "consumer: token-states (queue <code>mif.token-states.&lt;process&gt;.&lt;replica&gt;</code>" in section
    assert "<code>token_version</code>" in section and "JSON Schema" in section
    assert "No publisher" in page  # the accepted orphan is shown, not hidden
    assert 'href="/asyncapi.json"' in page and 'href="/docs"' in page
    # Offline: nothing is loaded from elsewhere.
    assert "<script" not in page and "http://" not in page and "https://" not in page


async def test_docs_and_openapi_link_to_the_events(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert '<a href="/docs/events">' in docs.text and "swagger-ui" in docs.text
    merged = merge_documents({}, DEFAULT_POLICY)
    assert "/docs/events" in merged["info"]["description"]
    assert merged["externalDocs"]["url"] == "/docs/events"


async def test_missing_catalogue_is_a_503_problem_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "asyncapi.json"
    async with await client_for(settings(asyncapi_path=path)) as c:
        for url in ("/asyncapi.json", "/docs/events"):
            response = await c.get(url)
            assert response.status_code == 503
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "make catalogue" in response.json()["detail"]
        document = {
            "asyncapi": "3.0.0",
            "info": {"title": "<b>Events</b>", "description": "Says `<script>alert(1)</script>`."},
            "channels": {},
        }
        path.write_text(json.dumps(document), encoding="utf-8")
        page = await c.get("/docs/events")
        assert page.status_code == 200
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
        assert "<title>&lt;b&gt;Events&lt;/b&gt;</title>" in page.text
