"""The platform end to end: real auth and gateway processes, real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from mif_auth.testing import PASSWORD
from tests.support import ADMIN_EMAIL, Suite, wait_for

pytestmark = pytest.mark.e2e


def test_bootstrap_admin_signs_in_through_the_gateway(suite: Suite) -> None:
    for form in ({"username": "admin"}, {"username": ADMIN_EMAIL}):
        response = httpx.post(f"{suite.url}/api/v1/auth/login", data={**form, "password": PASSWORD})
        assert response.status_code == 200
        assert response.json()["token_type"] == "bearer"
        assert response.headers["x-request-id"]
    token = httpx.post(f"{suite.url}/api/v1/auth/token", data={"email": ADMIN_EMAIL, "password": PASSWORD})
    assert token.status_code == 200


def test_roles_through_the_gateway(
    suite: Suite, admin_headers: dict[str, str], create_user: Callable[..., Any]
) -> None:
    manager = create_user("responsable")
    tech = create_user("technicien")
    organisation = httpx.post(
        f"{suite.url}/api/v1/clients", json={"nom_entreprise": f"Roles {time.time_ns()}"}, headers=admin_headers
    )
    assert organisation.status_code == 201, organisation.text
    client_user = create_user("client", client_id=organisation.json()["id"])
    with suite.client() as http:
        me = http.get("/api/v1/auth/me/", headers=client_user["headers"]).json()
        assert me["role"] == "client"
        listing = http.get("/api/v1/users?role=technicien", headers=manager["headers"])
        assert listing.status_code == 200
        assert isinstance(listing.json(), list)
        assert int(listing.headers["x-total-count"]) >= 1
        assert http.get("/api/v1/users", headers=tech["headers"]).status_code == 403
        assert http.get("/api/v1/users").status_code == 401
        created = http.post(
            "/api/v1/users",
            json={"username": "x1", "full_name": "X", "email": "x1@e2e.ma", "role": "admin", "password": PASSWORD},
            headers=manager["headers"],
        )
        assert created.status_code == 403
        # Identity headers sent by a client are not believed.
        spoofed = http.get("/api/v1/users", headers={**tech["headers"], "X-User-Role": "admin", "X-User-Id": "1"})
        assert spoofed.status_code == 403


def test_deactivated_user_is_refused_by_the_gateway_within_seconds(
    suite: Suite, admin_headers: dict[str, str], create_user: Callable[..., Any]
) -> None:
    tech = create_user("technicien")
    # notifications is stopped: the gateway passes a valid token on and answers 503 for the upstream, so the
    # 401 that follows can only be the gateway's own.
    with suite.client() as http, suite.stopped(suite.notifications):
        assert http.get("/api/v1/notifications/user/me", headers=tech["headers"]).status_code == 503
        assert http.delete(f"/api/v1/users/{tech['id']}", headers=admin_headers).status_code == 204
        wait_for(
            lambda: http.get("/api/v1/notifications/user/me", headers=tech["headers"]).status_code == 401,
            what="the gateway to refuse a deactivated user's token",
            timeout=5,
            interval=0.1,
        )


def test_unavailable_service_is_a_503_naming_it(suite: Suite, admin_headers: dict[str, str]) -> None:
    with suite.stopped(suite.notifications):
        response = httpx.get(f"{suite.url}/api/v1/notifications/user/me/", headers=admin_headers)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "notifications" in response.json()["detail"]


def test_docs_combine_every_service(suite: Suite) -> None:
    spec = httpx.get(f"{suite.url}/openapi.json").json()
    assert "/api/v1/auth/login" in spec["paths"]
    assert httpx.get(f"{suite.url}/docs").status_code == 200
    own = httpx.get(f"{suite.url}/api/v1/auth/openapi.json")
    assert own.status_code == 200
    assert "/api/v1/users" in own.json()["paths"]


def test_user_events_reach_rabbitmq(suite: Suite, create_user: Callable[..., Any]) -> None:
    async def scenario() -> dict[str, Any]:
        connection = await aio_pika.connect(suite.amqp_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key="auth.user.created.v1")
            user = await asyncio.to_thread(create_user, "technicien")
            async with asyncio.timeout(10):
                async with queue.iterator() as messages:
                    async for message in messages:
                        async with message.process():
                            body: dict[str, Any] = json.loads(message.body)
                            if body["data"]["user_id"] == user["id"]:
                                return body
        raise AssertionError("unreachable")

    envelope = asyncio.run(scenario())
    assert envelope["type"] == "auth.user.created.v1"
    assert envelope["specversion"] == "1.0"
    assert envelope["source"] == "/mif/auth"
    assert envelope["correlationid"]  # the request id of the gateway call that caused it


def test_killing_auth_mid_request_leaves_no_half_written_data(suite: Suite, admin_headers: dict[str, str]) -> None:
    async def burst() -> None:
        async with httpx.AsyncClient(base_url=suite.auth.url, headers=admin_headers, timeout=10) as http:

            async def one(n: int) -> None:
                body = {
                    "username": f"crash{n}",
                    "full_name": "Crash",
                    "email": f"crash{n}@e2e.ma",
                    "role": "technicien",
                    "password": PASSWORD,
                }
                with contextlib.suppress(httpx.HTTPError):
                    await http.post("/api/v1/users", json=body)

            tasks = [asyncio.create_task(one(n)) for n in range(40)]
            await asyncio.sleep(0.15)
            suite.auth.kill()
            await asyncio.gather(*tasks)

    asyncio.run(burst())
    suite.auth.start()

    async def check() -> tuple[set[int], set[int]]:
        conn = await asyncpg.connect(suite.database.dsn)
        try:
            users = await conn.fetch("SELECT id FROM auth.\"user\" WHERE username LIKE 'crash%'")
            events = await conn.fetch(
                "SELECT subject FROM auth.outbox WHERE type = 'auth.user.created.v1'"
                " AND envelope->'data'->>'username' LIKE 'crash%'"
            )
        finally:
            await conn.close()
        return {r["id"] for r in users}, {int(r["subject"]) for r in events}

    users, with_event = asyncio.run(check())
    # Every committed user has its creation event, and no event exists for a user that was not kept.
    assert users == with_event
    assert httpx.get(f"{suite.url}/api/v1/auth/me", headers=admin_headers).status_code == 200
