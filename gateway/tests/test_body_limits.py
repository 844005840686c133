"""Body limits as configured (the 413 says the limit in the unit it was set in), and rate limits off."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.mark.parametrize(
    ("limit", "said"),
    [(1536, "1536 bytes"), (2048, "2 KB"), (3 * 1_048_576, "3 MB"), (1_048_576 + 1024, "1025 KB")],
)
async def test_a_buffered_body_over_the_limit_is_413_naming_it(
    start_gateway: Any, bearer: Any, limit: int, said: str
) -> None:
    gw = await start_gateway(revocation_enabled=False, max_buffered_body_bytes=limit)
    async with gw.client() as c:
        response = await c.post(
            "/api/v1/clients",
            headers={**bearer("responsable"), "Content-Type": "application/json"},
            content=b'"' + b"a" * limit + b'"',
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == f"The request body is larger than the {said} accepted here."
        fits = await c.post(
            "/api/v1/clients",
            headers={**bearer("responsable"), "Content-Type": "application/json"},
            content=b'"' + b"a" * (limit - 2) + b'"',
        )
        assert fits.status_code == 200


async def test_a_streamed_body_announced_over_the_limit_is_413_before_anything_is_sent(
    start_gateway: Any, bearer: Any, upstream: Any
) -> None:
    gw = await start_gateway(revocation_enabled=False, max_streamed_body_bytes=4096)
    headers = {**bearer("technicien"), "Content-Type": "application/octet-stream"}
    async with gw.client() as c:
        before = len(upstream.requests)
        response = await c.post("/api/v1/documents?intervention_id=3", headers=headers, content=b"x" * 4097)
        assert response.status_code == 413
        assert response.json()["detail"] == "The request body is larger than the 4 KB accepted here."
        assert len(upstream.requests) == before  # refused on the announced length: the service never saw it
        response = await c.post("/api/v1/documents?intervention_id=3", headers=headers, content=b"x" * 4096)
        assert response.status_code == 200
        assert response.json()["size"] == 4096


async def test_with_rate_limits_off_nothing_is_ever_refused_429(start_gateway: Any, bearer: Any) -> None:
    gw = await start_gateway(
        revocation_enabled=False,
        rate_limit_enabled=False,
        rate_user_per_window=1,
        rate_anonymous_per_window=1,
        login_per_ip=1,
        login_per_account=1,
        login_attempts_per_ip=1,
    )
    async with gw.client() as c:
        user = bearer("technicien", user_id=777)
        assert [(await c.get("/api/v1/planning", headers=user)).status_code for _ in range(3)] == [200] * 3
        # Anonymous, and with a token that does not verify: 401 each time, never 429.
        assert [(await c.get("/api/v1/clients")).status_code for _ in range(3)] == [401] * 3
        bad = {"Authorization": "Bearer not-a-token"}
        assert [(await c.get("/api/v1/clients", headers=bad)).status_code for _ in range(3)] == [401] * 3
        # Failed sign-ins (the echo upstream answers 401 as auth does to a wrong password) are not counted.
        wrong = {"x-test-status": "401"}
        statuses = [
            (await c.post("/api/v1/auth/login", data={"username": "alice", "password": "x"}, headers=wrong)).status_code
            for _ in range(3)
        ]
        assert statuses == [401] * 3
