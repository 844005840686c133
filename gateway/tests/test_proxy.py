"""Forwarding: headers, request id, errors from upstreams, paths, CORS, rate limits, body handling."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

Echoed = Callable[[httpx.Response], dict[str, Any]]


def values(record: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in record["headers"] if k == name]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_identity_headers_are_stripped_and_authorization_forwarded(
    client: httpx.AsyncClient, bearer: Callable[..., dict[str, str]], echoed: Echoed
) -> None:
    auth = bearer("technicien", user_id=31)
    spoofed = {
        "X-User-Id": "1",
        "X-User-Role": "admin",
        "X-Client-Id": "9",
        "X-Forwarded-User": "admin",
        "X-Principal": "admin",
        "X-MIF-Role": "admin",
        "X-Mif-Anything": "x",
        "X-Real-IP": "10.9.9.9",
        "Forwarded": "for=10.9.9.9",
        "X-Forwarded-Host": "evil.example",
        "Proxy-Authorization": "Basic abc",
        "X-Custom": "kept",
    }
    record = echoed(await client.get("/api/v1/interventions/5", headers={**auth, **spoofed}))
    names = {k for k, _ in record["headers"]}
    for name in (
        "x-user-id",
        "x-user-role",
        "x-client-id",
        "x-forwarded-user",
        "x-principal",
        "x-mif-role",
        "x-mif-anything",
        "x-real-ip",
        "forwarded",
        "proxy-authorization",
    ):
        assert name not in names, name
    assert values(record, "authorization") == [auth["Authorization"]]
    assert values(record, "x-custom") == ["kept"]
    assert values(record, "x-forwarded-host") != ["evil.example"]


async def test_forwarded_for_proto_and_host(client: httpx.AsyncClient, bearer: Any, echoed: Echoed) -> None:
    record = echoed(
        await client.get(
            "/api/v1/equipements", headers={**bearer("client", client_id=2), "X-Forwarded-For": "198.51.100.4"}
        )
    )
    # No proxy is trusted by default: a client's own X-Forwarded-For is dropped and services get only the
    # address the gateway saw (test_forwarded.py covers a trusted ingress in front).
    assert values(record, "x-forwarded-for") == ["127.0.0.1"]
    assert values(record, "x-forwarded-proto") == ["http"]
    assert values(record, "x-forwarded-host")[0].startswith("127.0.0.1:")
    record = echoed(await client.get("/api/v1/equipements", headers=bearer("client", client_id=2)))
    assert values(record, "x-forwarded-for") == ["127.0.0.1"]


async def test_hop_by_hop_headers_are_not_forwarded(client: httpx.AsyncClient, bearer: Any, echoed: Echoed) -> None:
    response = await client.get(
        "/api/v1/clients",
        headers={
            **bearer("responsable"),
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "1",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Keep-Alive": "timeout=5",
        },
    )
    record = echoed(response)
    names = {k for k, _ in record["headers"]}
    assert not names & {"x-drop-me", "te", "upgrade", "keep-alive"}
    # Upstream response: its hop-by-hop, CORS and request-id headers do not leak through.
    assert "keep-alive" not in response.headers
    assert "access-control-allow-origin" not in response.headers
    assert response.headers.get_list("x-request-id") != ["upstream-should-not-win"]
    assert len(response.headers.get_list("server")) <= 1
    assert len(response.headers.get_list("date")) == 1


async def test_request_id_is_generated_kept_or_replaced(client: httpx.AsyncClient, bearer: Any, echoed: Echoed) -> None:
    auth = bearer("responsable")
    generated = await client.get("/api/v1/clients", headers=auth)
    rid = generated.headers["x-request-id"]
    assert len(rid) == 32
    assert values(echoed(generated), "x-request-id") == [rid]

    kept = await client.get("/api/v1/clients", headers={**auth, "X-Request-ID": "front-123.abc"})
    assert kept.headers["x-request-id"] == "front-123.abc"
    assert values(echoed(kept), "x-request-id") == ["front-123.abc"]

    invalid = await client.get("/api/v1/clients", headers={**auth, "X-Request-ID": "bad id <script>"})
    replaced = invalid.headers["x-request-id"]
    assert replaced != "bad id <script>" and len(replaced) == 32
    assert values(echoed(invalid), "x-request-id") == [replaced]

    problem = await client.get("/api/v1/clients", headers={"X-Request-ID": "err-1"})
    assert problem.status_code == 401
    assert problem.json()["request_id"] == "err-1" == problem.headers["x-request-id"]


async def test_path_and_query_are_forwarded(client: httpx.AsyncClient, bearer: Any, echoed: Echoed) -> None:
    record = echoed(
        await client.get(
            "/api/v1/filters/interventions?statut=ouverte&q=pompe%20%C3%A0%20eau&statut=affectee",
            headers=bearer("technicien"),
        )
    )
    assert record["path"] == "/api/v1/filters/interventions"
    assert record["query"] == "statut=ouverte&q=pompe%20%C3%A0%20eau&statut=affectee"


@pytest.mark.parametrize(
    "path", ["/api/v1/interventions/", "/api/v1/interventions/7/", "/api/v1/techniciens/competences/"]
)
async def test_trailing_slash_is_optional(client: httpx.AsyncClient, bearer: Any, echoed: Echoed, path: str) -> None:
    response = await client.get(path, headers=bearer("responsable"))
    assert response.status_code == 200
    assert echoed(response)["path"] == path.rstrip("/")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope",
        "/api/v1/interventions/abc",
        "/api/v2/interventions",
        "/api/v1",
        "/api/v1/users/1/%2E%2E/2",
        "/api/v1//users",
        "/nothing-here",
        "/api/v1/auth/internal/token-states",
    ],
)
async def test_unknown_routes_are_404_problems(client: httpx.AsyncClient, bearer: Any, path: str) -> None:
    response = await client.get(path, headers=bearer("admin"))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_internal_route_is_404_even_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/internal/token-states")
    assert response.status_code == 404


async def test_wrong_method_on_a_known_path_is_405(client: httpx.AsyncClient, bearer: Any) -> None:
    response = await client.patch("/api/v1/clients/4", headers=bearer("admin"), json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, PUT"
    assert response.headers["content-type"] == "application/problem+json"


async def test_upstream_down_is_503_naming_the_service(start_gateway: Any, bearer: Any) -> None:
    gw = await start_gateway(upstreams={"assets": closed_port_url()}, revocation_enabled=False)
    async with gw.client() as c:
        response = await c.get("/api/v1/equipements", headers=bearer("responsable"))
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "The assets service is unavailable."
        assert response.json()["request_id"] == response.headers["x-request-id"]
        assert response.json()["instance"] == "/api/v1/equipements"
        assert response.headers["retry-after"] == "5"  # as documented: a 503 says when to try again
        # Other services still answer.
        assert (await c.get("/api/v1/interventions", headers=bearer("responsable"))).status_code == 200


async def test_slow_upstream_is_504(start_gateway: Any, bearer: Any) -> None:
    gw = await start_gateway(upstream_timeout=0.3, revocation_enabled=False)
    async with gw.client() as c:
        started = time.monotonic()
        response = await c.get("/api/v1/planning", headers={**bearer("technicien"), "X-Test-Delay": "2"})
        assert response.status_code == 504
        assert time.monotonic() - started < 1.5
        assert response.json()["detail"] == "The planning service did not answer in time."
        assert (await c.get("/api/v1/planning", headers=bearer("technicien"))).status_code == 200


async def test_cors_preflight_and_simple_request(client: httpx.AsyncClient, bearer: Any) -> None:
    preflight = await client.options(
        "/api/v1/interventions",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "if-match" in preflight.headers["access-control-allow-headers"].lower()
    assert preflight.headers["access-control-allow-credentials"] == "true"

    refused = await client.options(
        "/api/v1/interventions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert "origin" in refused.json()["detail"]
    assert "access-control-allow-origin" not in refused.headers

    simple = await client.get("/api/v1/interventions", headers={**bearer("client"), "Origin": "http://localhost:3000"})
    assert simple.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
    denied = await client.get("/api/v1/interventions", headers={"Origin": "http://localhost:3000"})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_rate_limits(start_gateway: Any, bearer: Any) -> None:
    gw = await start_gateway(
        revocation_enabled=False,
        rate_user_per_window=5,
        rate_anonymous_per_window=4,
        login_per_ip=3,
        login_per_account=2,
        rate_window_seconds=60,
        login_window_seconds=60,
    )
    async with gw.client() as c:
        user = bearer("technicien", user_id=501)
        statuses = [(await c.get("/api/v1/planning", headers=user)).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        limited = await c.get("/api/v1/planning", headers=user)
        assert limited.headers["content-type"] == "application/problem+json"
        # Sliding window: past the next window boundary this window's hits still weigh until they decay
        # below the limit, up to window / limit seconds more (60 + 60 / 5).
        assert 1 <= int(limited.headers["retry-after"]) <= 72
        # Another user has a budget of its own.
        assert (await c.get("/api/v1/planning", headers=bearer("technicien", user_id=502))).status_code == 200

    # The test client plays a trusted proxy: X-Forwarded-For says which address each attempt comes from.
    gw = await start_gateway(
        revocation_enabled=False,
        rate_anonymous_per_window=100,
        login_per_ip=3,
        login_per_account=2,
        trusted_proxies=["127.0.0.1"],
    )
    async with gw.client() as c:
        login = "/api/v1/auth/login"
        here, elsewhere = {"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "192.0.2.7"}
        wrong = {"x-test-status": "401", **here}  # the echo upstream answers as auth does to a wrong password
        first = await c.post(login, data={"username": "Alice", "password": "x"}, headers=wrong)
        second = await c.post(login, data={"username": "alice ", "password": "y"}, headers=wrong)
        third = await c.post(login, files={"username": (None, "ALICE"), "password": (None, "z")}, headers=here)
        assert [first.status_code, second.status_code, third.status_code] == [401, 401, 429]
        assert "for this account from this address" in third.json()["detail"]
        assert int(third.headers["retry-after"]) >= 1
        # Per (account, address): someone guessing elsewhere never locks the account's owner out.
        owner = await c.post(login, data={"username": "alice", "password": "right"}, headers=elsewhere)
        assert owner.status_code == 200
        # Per address: failures count, whatever the account (spraying).
        spray = await c.post("/api/v1/auth/token", data={"email": "bob@example.com", "password": "x"}, headers=wrong)
        assert spray.status_code == 401
        fourth = await c.post("/api/v1/auth/token", data={"email": "carol@example.com", "password": "x"}, headers=here)
        assert fourth.status_code == 429
        assert "attempts from this address" in fourth.json()["detail"]
        # ... and only that address's.
        other = await c.post(
            "/api/v1/auth/token", data={"email": "carol@example.com", "password": "x"}, headers=elsewhere
        )
        assert other.status_code == 200


async def test_a_shift_signing_in_behind_one_address_is_never_refused(start_gateway: Any) -> None:
    """40 people sign in correctly from one factory NAT within seconds (issue 13: 11 were refused 429)."""
    gw = await start_gateway(revocation_enabled=False, login_per_ip=5, login_per_account=3)
    async with gw.client() as c:
        statuses = [
            (
                await c.post("/api/v1/auth/login", data={"username": f"ouvrier{i}", "password": "Bon!Mot2passe"})
            ).status_code
            for i in range(40)
        ]
        assert statuses == [200] * 40
        # The same person signing in again and again (new tab, new device) is not a guess either.
        again = [
            (await c.post("/api/v1/auth/login", data={"username": "ouvrier0", "password": "p"})).status_code
            for _ in range(5)
        ]
        assert again == [200] * 5
    gw = await start_gateway(revocation_enabled=False, login_attempts_per_ip=10)
    async with gw.client() as c:
        statuses = [
            (await c.post("/api/v1/auth/login", data={"username": f"u{i}", "password": "p"})).status_code
            for i in range(11)
        ]
        assert statuses == [200] * 10 + [429]  # the ceiling on every attempt of an address

    gw = await start_gateway(revocation_enabled=False, rate_anonymous_per_window=3)
    async with gw.client() as c:
        statuses = [(await c.get("/api/v1/documents/1/download")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        # Failed authentication counts against the address too.
        assert (await c.get("/api/v1/clients")).status_code == 429


async def test_oversized_json_is_413_and_malformed_json_is_forwarded(
    client: httpx.AsyncClient, bearer: Any, echoed: Echoed
) -> None:
    auth = bearer("responsable")
    big = b'{"x": "' + b"a" * (1_048_576 + 10) + b'"}'
    response = await client.post("/api/v1/clients", headers={**auth, "Content-Type": "application/json"}, content=big)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"a" * 65536

    response = await client.post(
        "/api/v1/clients", headers={**auth, "Content-Type": "application/json"}, content=chunked()
    )
    assert response.status_code == 413

    malformed = await client.post(
        "/api/v1/clients", headers={**auth, "Content-Type": "application/json"}, content=b'{"nom": '
    )
    assert echoed(malformed)["body"] == '{"nom": '

    exact = b'{"a": "' + b"b" * 1000 + b'"}'
    record = echoed(
        await client.put("/api/v1/clients/3", headers={**auth, "Content-Type": "application/json"}, content=exact)
    )
    assert record["sha256"] == hashlib.sha256(exact).hexdigest()
    assert values(record, "content-length") == [str(len(exact))]


async def test_no_content_and_head(client: httpx.AsyncClient, bearer: Any) -> None:
    auth = bearer("admin")
    response = await client.delete("/api/v1/users/4", headers={**auth, "X-Test-Status": "204"})
    assert response.status_code == 204
    assert response.content == b""
    head = await client.head("/api/v1/clients/4", headers=auth)
    assert head.status_code == 200
    assert head.content == b""


async def test_upstream_errors_pass_through(client: httpx.AsyncClient, bearer: Any) -> None:
    response = await client.get("/api/v1/clients/4", headers={**bearer("admin"), "X-Test-Status": "409"})
    assert response.status_code == 409
    assert response.headers["x-upstream"] == "echo"


TWENTY_MB = 20 * 1024 * 1024


async def test_streaming_upload_20mb(client: httpx.AsyncClient, bearer: Any, echoed: Echoed) -> None:
    payload = bytes(range(256)) * (TWENTY_MB // 256)
    boundary = "mifboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + payload + tail
    headers = {**bearer("technicien"), "Content-Type": f"multipart/form-data; boundary={boundary}"}

    record = echoed(await client.post("/api/v1/documents?intervention_id=3", headers=headers, content=body))
    assert record["size"] == len(body)
    assert record["sha256"] == hashlib.sha256(body).hexdigest()
    assert values(record, "content-length") == [str(len(body))]
    assert record["query"] == "intervention_id=3"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked all the way
        for start in range(0, len(body), 1_000_003):
            yield body[start : start + 1_000_003]

    record = echoed(await client.post("/api/v1/documents", headers=headers, content=chunks()))
    assert record["sha256"] == hashlib.sha256(body).hexdigest()
    assert values(record, "transfer-encoding") == ["chunked"]


async def test_streaming_download_20mb(client: httpx.AsyncClient) -> None:
    digest = hashlib.sha256()
    size = 0
    async with client.stream("GET", f"/api/v1/documents/9/download?size={TWENTY_MB}&token=signed") as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not buffered by the gateway
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            size += len(chunk)
    expected = hashlib.sha256(str(TWENTY_MB).encode()).digest() * (65536 // 32)
    expected = (expected * (TWENTY_MB // len(expected) + 1))[:TWENTY_MB]
    assert size == TWENTY_MB
    assert digest.hexdigest() == hashlib.sha256(expected).hexdigest()


async def test_stream_stops_when_the_client_leaves(client: httpx.AsyncClient, bearer: Any, upstream: Any) -> None:
    upstream.stream_closed.clear()
    async with client.stream("GET", "/api/v1/notifications/stream?ticks=1000", headers=bearer("client")) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = b""
        async for chunk in response.aiter_raw():
            received += chunk
            if received.count(b"\n\n") >= 2:
                break
    await asyncio.wait_for(upstream.stream_closed.wait(), 3)
