"""A real upstream HTTP server standing in for the services, and gateways run by uvicorn in-process.

The upstream (aiohttp.web on a free port) serves the test keys' JWKS and the token states, echoes
method/path/query/headers/body, streams large bodies both ways, and can be slow on demand. Every
service's upstream URL points at it unless a test says otherwise. End-to-end tests with the real
services live in the repository's top-level `tests/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from aiohttp import web

from mif_common.suite import ALL_SERVICES
from mif_common.testing.keys import TEST_AUDIENCE, TEST_ISSUER, TestKeys
from mif_gateway.config import GatewaySettings
from mif_gateway.main import create_app

CHUNK = 64 * 1024


def pattern_bytes(size: int) -> bytes:
    """Deterministic, non-repeating-looking content for byte-equality checks."""
    block = hashlib.sha256(str(size).encode()).digest() * (CHUNK // 32)
    return (block * (size // len(block) + 1))[:size]


@dataclass
class Upstream:
    url: str
    keys: TestKeys
    token_states: list[dict[str, Any]] = field(default_factory=list)
    token_states_status: int = 200
    jwks_status: int = 200
    # Asked about one user, the stand-in auth knows every user (active, version 0, or its row in
    # `token_states`) except these.
    unknown_users: set[int] = field(default_factory=set)
    token_state_questions: list[int] = field(default_factory=list)
    openapi: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)


def _echo_app(state: Upstream) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/api/v1/auth/.well-known/jwks.json":
            if state.jwks_status != 200:
                return web.json_response({"detail": "down"}, status=state.jwks_status)
            return web.json_response(state.keys.jwks)
        if path == "/api/v1/auth/internal/token-states":
            if state.token_states_status != 200:
                return web.json_response({"detail": "down"}, status=state.token_states_status)
            return web.json_response(state.token_states)
        if path.startswith("/api/v1/auth/internal/token-states/"):
            if state.token_states_status != 200:
                return web.json_response({"detail": "down"}, status=state.token_states_status)
            user_id = int(path.rsplit("/", 1)[1])
            state.token_state_questions.append(user_id)
            if user_id in state.unknown_users:
                return web.json_response({"detail": f"No user with id {user_id}."}, status=404)
            known = [row for row in state.token_states if row["user_id"] == user_id]
            return web.json_response(known[0] if known else {"user_id": user_id, "is_active": True, "token_version": 0})
        if path == "/health/ready":
            return web.json_response({"status": "ok"})
        if path.endswith("/openapi.json") and path.split("/")[3] in state.openapi:
            return web.json_response(state.openapi[path.split("/")[3]])
        delay = float(request.headers.get("x-test-delay", "0"))
        if delay:
            await asyncio.sleep(delay)
        if path.endswith("/download"):
            size = int(request.query.get("size", "0"))
            response = web.StreamResponse(headers={"content-type": "application/octet-stream", "x-upstream": "echo"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            data = pattern_bytes(size)
            for start in range(0, size, CHUNK):
                await response.write(data[start : start + CHUNK])
            await response.write_eof()
            return response
        if path == "/api/v1/notifications/stream":
            response = web.StreamResponse(headers={"content-type": "text/event-stream", "x-upstream": "echo"})
            await response.prepare(request)
            try:
                for i in range(int(request.query.get("ticks", "3"))):
                    await response.write(f"data: tick {i}\n\n".encode())
                    await asyncio.sleep(0.05)
            except (ConnectionResetError, asyncio.CancelledError):
                state.stream_closed.set()
                raise
            return response
        digest = hashlib.sha256()
        size = 0
        small = bytearray()
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
            if len(small) < 4096:
                small.extend(chunk[: 4096 - len(small)])
        record = {
            "method": request.method,
            "path": path,
            "raw_path": request.raw_path,
            "query": request.rel_url.raw_query_string,
            "headers": [[k.lower(), v] for k, v in request.headers.items()],
            "body": small.decode("utf-8", "replace"),
            "size": size,
            "sha256": digest.hexdigest(),
        }
        state.requests.append(record)
        status = int(request.headers.get("x-test-status", "200"))
        if status == 204:
            return web.Response(status=204)
        return web.json_response(
            record,
            status=status,
            headers={
                "x-request-id": "upstream-should-not-win",
                "access-control-allow-origin": "*",
                "keep-alive": "timeout=5",
            },
        )

    @web.middleware
    async def mark(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        if not response.prepared:
            response.headers["x-upstream"] = "echo"
        return response

    app = web.Application(client_max_size=1024**3, middlewares=[mark])
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
async def upstream(mif_keys: TestKeys) -> AsyncIterator[Upstream]:
    state = Upstream(url="", keys=mif_keys)
    runner = web.AppRunner(_echo_app(state), access_log=None, handler_cancellation=True)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@dataclass
class RunningGateway:
    url: str
    app: Any
    server: uvicorn.Server
    task: asyncio.Task[None]

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30.0, **kw)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:  # no signal handlers inside the test process
        yield


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture(scope="session")
async def start_gateway(upstream: Upstream, mif_amqp_url: str) -> AsyncIterator[StartGateway]:
    """Factory: a gateway on a free port, upstreams at the echo server unless overridden."""
    running: list[RunningGateway] = []

    async def start(*, upstreams: dict[str, str] | None = None, **overrides: Any) -> RunningGateway:
        values: dict[str, Any] = {
            "environment": "test",
            "upstreams": {s.name: upstream.url for s in ALL_SERVICES} | (upstreams or {}),
            "amqp_url": mif_amqp_url,
            "jwt_issuer": TEST_ISSUER,
            "jwt_audience": TEST_AUDIENCE,
            "log_json": False,
            "log_level": "WARNING",
            "token_states_retry_seconds": 0.2,
            "rate_user_per_window": 100_000,
            "rate_anonymous_per_window": 100_000,
            "login_per_ip": 100_000,
            "login_per_account": 100_000,
        }
        values.update(overrides)
        settings = GatewaySettings(**values)
        app = create_app(settings)
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
        # TCP, and without it Nagle + delayed ACKs add ~40 ms to every response.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        # As the gateway runs everywhere (--no-proxy-headers): it decides the client address itself.
        config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, proxy_headers=False)
        server = _Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        for _ in range(500):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        gw = RunningGateway(url=f"http://127.0.0.1:{port}", app=app, server=server, task=task)
        running.append(gw)
        return gw

    yield start
    for gw in running:
        gw.server.should_exit = True
    for gw in running:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gw.task, 10)


@pytest.fixture(scope="session")
async def gateway(start_gateway: StartGateway) -> RunningGateway:
    gw = await start_gateway()
    follower = gw.app.state.revocation
    await asyncio.wait_for(follower.subscribed.wait(), 15)
    return gw


@pytest.fixture(scope="session")
async def client(gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway.client() as c:
        yield c


@pytest.fixture(scope="session")
def bearer(mif_keys: TestKeys) -> Callable[..., dict[str, str]]:
    def make(role: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mif_keys.token(role, **kw)}"}

    return make


def _echoed(response: httpx.Response) -> dict[str, Any]:
    assert response.headers.get("x-upstream") == "echo", response.text
    data: dict[str, Any] = response.json()
    return data


@pytest.fixture(scope="session")
def echoed() -> Callable[[httpx.Response], dict[str, Any]]:
    """The upstream's record of the request it received through the gateway."""
    return _echoed
