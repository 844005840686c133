"""Both upstream clients (`upstream_client`: aiohttp, the default, and httpx2) against a misbehaving service:
one that closes the connection without answering, answers with a body shorter than announced (small:
buffered; large: streamed), or is not there at all. What the client of the gateway sees must not depend on
the client library the gateway uses."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mif_common.testing.processes import free_port

pytestmark = pytest.mark.parametrize("upstream_client", ["aiohttp", "httpx2"])

LARGE = 1_000_000  # above response_buffer_bytes (256 KB): streamed to the client


@dataclass
class Misbehaving:
    """A raw HTTP/1.1 server: `?mode=` says how it answers; it records every request line it reads."""

    url: str = ""
    requests: list[str] = field(default_factory=list)


async def _serve(state: Misbehaving, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            state.requests.append(lines[0])
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            mode = lines[0].split(" ")[1].partition("mode=")[2]
            if mode == "close":  # no answer at all
                return
            if mode == "short":  # 100 bytes announced, 10 sent
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n")
                writer.write(b'{"partial')
                await writer.drain()
                return
            if mode == "short-large":  # streamed: the client gets the head and part of the body
                writer.write(f"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {LARGE}\r\n\r\n".encode())
                writer.write(b"x" * 70_000)
                await writer.drain()
                return
            body = b'{"ok":true}'
            if mode == "large":
                body = hashlib.sha256(b"large").hexdigest().encode() * (LARGE // 64)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
async def misbehaving() -> AsyncIterator[Misbehaving]:
    state = Misbehaving()
    server = await asyncio.start_server(lambda r, w: _serve(state, r, w), "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield state
        server.close()


@pytest.fixture
async def gateway_to_misbehaving(start_gateway: Any, misbehaving: Misbehaving, upstream_client: str) -> Any:
    """A gateway using `upstream_client`, its assets upstream the misbehaving server."""
    return await start_gateway(
        upstreams={"assets": misbehaving.url}, upstream_client=upstream_client, revocation_enabled=False
    )


async def test_answers_are_forwarded_small_and_streamed(gateway_to_misbehaving: Any, bearer: Any) -> None:
    async with gateway_to_misbehaving.client() as c:
        small = await c.get("/api/v1/equipements/1", headers=bearer("responsable"))
        assert small.status_code == 200
        assert small.json() == {"ok": True}
        large = await c.get("/api/v1/equipements/1?mode=large", headers=bearer("responsable"))
        assert large.status_code == 200
        assert large.content == hashlib.sha256(b"large").hexdigest().encode() * (LARGE // 64)


async def test_a_closed_connection_is_retried_once_for_idempotent_methods_then_502(
    gateway_to_misbehaving: Any, bearer: Any, misbehaving: Misbehaving
) -> None:
    headers = bearer("responsable")
    async with gateway_to_misbehaving.client() as c:
        response = await c.get("/api/v1/equipements/1?mode=close", headers=headers)
        assert response.status_code == 502
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "The assets service closed the connection without answering."
        # Sent again (aiohttp also retries an idempotent request once by itself: 4 sends with it, 2 with httpx2).
        assert set(misbehaving.requests) == {"GET /api/v1/equipements/1?mode=close HTTP/1.1"}
        assert len(misbehaving.requests) >= 2

        # A POST may have been acted upon: never sent twice.
        misbehaving.requests.clear()
        response = await c.post("/api/v1/equipements?mode=close", headers=headers, json={"nom": "Presse"})
        assert response.status_code == 502
        assert misbehaving.requests == ["POST /api/v1/equipements?mode=close HTTP/1.1"]


async def test_a_body_shorter_than_announced_is_502_when_buffered(gateway_to_misbehaving: Any, bearer: Any) -> None:
    async with gateway_to_misbehaving.client() as c:
        response = await c.get("/api/v1/equipements/1?mode=short", headers=bearer("responsable"))
        assert response.status_code == 502
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "The service's answer broke off."
        # The gateway is fine afterwards.
        assert (await c.get("/api/v1/equipements/1", headers=bearer("responsable"))).json() == {"ok": True}


async def test_a_streamed_body_that_breaks_off_aborts_the_client_connection(
    gateway_to_misbehaving: Any, bearer: Any
) -> None:
    async with gateway_to_misbehaving.client() as c:
        received: list[int] = []

        async def read_all() -> None:
            async with c.stream("GET", "/api/v1/equipements/1?mode=short-large", headers=bearer("responsable")) as r:
                assert r.status_code == 200
                async for chunk in r.aiter_raw():
                    received.append(len(chunk))

        with pytest.raises(httpx.HTTPError):  # never a complete-looking answer
            await read_all()
        assert 0 < sum(received) < LARGE
        assert (await c.get("/api/v1/equipements/1", headers=bearer("responsable"))).status_code == 200


async def test_unreachable_and_slow_services(
    start_gateway: Any, bearer: Any, upstream: Any, upstream_client: str
) -> None:
    gw = await start_gateway(
        upstreams={"assets": f"http://127.0.0.1:{free_port()}"},  # nothing listens there
        upstream_client=upstream_client,
        upstream_timeout=0.3,
        revocation_enabled=False,
    )
    async with gw.client() as c:
        down = await c.get("/api/v1/equipements", headers=bearer("responsable"))
        assert down.status_code == 503
        assert down.json()["detail"] == "The assets service is unavailable."
        assert down.headers["retry-after"] == "5"
        slow = await c.get("/api/v1/planning", headers={**bearer("technicien"), "X-Test-Delay": "2"})
        assert slow.status_code == 504
        assert slow.json()["detail"] == "The planning service did not answer in time."


async def test_request_bodies_reach_the_service(
    start_gateway: Any, bearer: Any, echoed: Any, upstream_client: str
) -> None:
    gw = await start_gateway(upstream_client=upstream_client, revocation_enabled=False)
    payload = bytes(range(256)) * 8192  # 2 MB, streamed (not a buffered type)
    async with gw.client() as c:
        record = echoed(
            await c.post(
                "/api/v1/documents?intervention_id=3",
                headers={**bearer("technicien"), "Content-Type": "application/octet-stream"},
                content=payload,
            )
        )
        assert record["size"] == len(payload)
        assert record["sha256"] == hashlib.sha256(payload).hexdigest()
        assert record["query"] == "intervention_id=3"
        record = echoed(await c.put("/api/v1/equipements/4", headers=bearer("responsable"), json={"nom": "Tour"}))
        assert record["method"] == "PUT"
        assert record["body"] == '{"nom":"Tour"}'
