"""Hostile requests refused at the edge (mif_common.guard in the gateway): a NUL in the URL or a JSON
string, unpaired surrogates, deep JSON are 400 without reaching a service; a body that stops arriving is
408, buffered or streamed, and a streamed upload is then abandoned upstream too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from mif_common.testing.processes import free_port

Echoed = Callable[[httpx.Response], dict[str, Any]]


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-upstream" not in response.headers  # answered by the gateway itself
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith("/" + slug) and problem["detail"] and problem["request_id"]
    return problem


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/api/v1/interventions?q=%00", None),
        ("/api/v1/interventions/1%00", None),
        ("/api/v1/interventions", b'{"titre": "a\\u0000b"}'),
        ("/api/v1/interventions", b'{"titre": "\\ud800"}'),
        ("/api/v1/interventions", b"[" * 10_000 + b"]" * 10_000),
    ],
)
async def test_garbage_is_refused_at_the_edge(
    client: httpx.AsyncClient, bearer: Any, upstream: Any, url: str, body: bytes | None
) -> None:
    before = len(upstream.requests)
    headers = {**bearer("responsable"), "content-type": "application/json"}
    if body is None:
        response = await client.get(url, headers=headers)
        assert_problem(response, 400, "nul-character")
    else:
        response = await client.post(url, content=body, headers=headers)
        assert response.status_code == 400, response.text
    assert len(upstream.requests) == before


async def test_clean_json_passes_through_unchanged(client: httpx.AsyncClient, bearer: Any, echoed: Echoed) -> None:
    body = b'{"titre": "Fuite \\u00e9 \\ud83d\\ude00", "nested": [[[1]]]}'
    record = echoed(
        await client.post(
            "/api/v1/interventions", content=body, headers={**bearer("responsable"), "content-type": "application/json"}
        )
    )
    assert record["body"] == body.decode()


# --- bodies that stop arriving -------------------------------------------------------------------------


@pytest.fixture
async def stalled_upstream() -> AsyncIterator[dict[str, Any]]:
    """A documents stand-in that records how each upload's body ended."""
    seen: dict[str, Any] = {"started": asyncio.Event(), "ended": asyncio.Event(), "outcome": None, "bytes": 0}

    async def upload(request: web.Request) -> web.Response:
        seen["started"].set()
        try:
            async for chunk in request.content.iter_any():
                seen["bytes"] += len(chunk)
            seen["outcome"] = "complete"
        except BaseException as exc:
            seen["outcome"] = type(exc).__name__
            raise
        finally:
            seen["ended"].set()
        return web.json_response({"size": seen["bytes"]})

    app = web.Application()
    app.router.add_post("/api/v1/documents", upload)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    seen["url"] = f"http://127.0.0.1:{port}"
    yield seen
    await runner.cleanup()


async def send_partially(url: str, head: bytes, first: bytes) -> tuple[float, int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head + first)
        await writer.drain()
        started = time.monotonic()
        status_line = await asyncio.wait_for(reader.readline(), 6)
        elapsed = time.monotonic() - started
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 6)) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 6)
        return elapsed, int(status_line.split()[1]), headers, body
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head(path: str, token: str, content_type: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: gw\r\nAuthorization: {token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def assert_timeout(status: int, headers: dict[str, str], body: bytes, elapsed: float) -> None:
    assert status == 408, body
    assert headers["content-type"] == "application/problem+json" and headers["connection"] == "close"
    problem = json.loads(body)
    assert problem["status"] == 408 and "stopped arriving" in problem["detail"]
    assert 0.9 <= elapsed <= 2.5, elapsed


async def test_a_buffered_body_that_stops_arriving_is_408(start_gateway: Any, bearer: Any, upstream: Any) -> None:
    gw = await start_gateway(body_timeout_seconds=1.0, revocation_enabled=False)
    before = len(upstream.requests)
    token = bearer("responsable")["Authorization"]
    elapsed, status, headers, body = await send_partially(
        gw.url, head("/api/v1/interventions", token, "application/json", 100), b'{"titre": '
    )
    assert_timeout(status, headers, body, elapsed)
    assert len(upstream.requests) == before  # never forwarded


async def test_a_streamed_upload_that_stops_arriving_is_408_and_abandoned_upstream(
    start_gateway: Any, bearer: Any, stalled_upstream: dict[str, Any]
) -> None:
    gw = await start_gateway(
        body_timeout_seconds=1.0, revocation_enabled=False, upstreams={"documents": stalled_upstream["url"]}
    )
    token = bearer("technicien")["Authorization"]
    first = b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n' + b"x" * 1000
    elapsed, status, headers, body = await send_partially(
        gw.url, head("/api/v1/documents", token, "multipart/form-data; boundary=xx", 100_000), first
    )
    assert_timeout(status, headers, body, elapsed)
    assert stalled_upstream["started"].is_set()  # the upload was under way upstream...
    await asyncio.wait_for(stalled_upstream["ended"].wait(), 5)
    assert stalled_upstream["outcome"] != "complete"  # ...and its connection was closed, not left hanging
    assert stalled_upstream["bytes"] < 100_000
