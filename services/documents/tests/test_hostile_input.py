"""Fuzz findings: a NUL in the search (a 500 from PostgreSQL before mif_common.guard) and a category filter
repeated past PostgreSQL's limit of bound parameters are a 4xx problem+json."""

from __future__ import annotations

import httpx

from mif_common.params import MAX_REPEATS


async def test_a_nul_in_the_search_is_400(client: httpx.AsyncClient, manager: dict[str, str]) -> None:
    response = await client.get("/api/v1/documents?q=rapport%00", headers=manager)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/nul-character")


async def test_a_category_repeated_past_the_limit_is_422(client: httpx.AsyncClient, manager: dict[str, str]) -> None:
    ok = await client.get("/api/v1/documents", params=[("categorie", "photo")] * MAX_REPEATS, headers=manager)
    assert ok.status_code == 200, ok.text
    refused = await client.get(
        "/api/v1/documents", params=[("categorie", "photo")] * (MAX_REPEATS + 1), headers=manager
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "categorie"
