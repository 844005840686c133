"""Fuzz findings: a NUL in a search (a 500 from PostgreSQL before mif_common.guard) and a filter repeated
past PostgreSQL's limit of bound parameters are a 4xx problem+json."""

from __future__ import annotations

import httpx
import pytest

from mif_assets.testing import Headers
from mif_common.params import MAX_REPEATS


@pytest.mark.parametrize("path", ["/api/v1/clients", "/api/v1/equipements"])
async def test_a_nul_in_the_search_is_400(client: httpx.AsyncClient, manager: Headers, path: str) -> None:
    response = await client.get(f"{path}?q=pompe%00", headers=manager)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/nul-character")


@pytest.mark.parametrize(("name", "value"), [("statut", "operationnel"), ("criticite", "critique")])
async def test_a_filter_repeated_past_the_limit_is_422(
    client: httpx.AsyncClient, manager: Headers, name: str, value: str
) -> None:
    ok = await client.get("/api/v1/equipements", params=[(name, value)] * MAX_REPEATS, headers=manager)
    assert ok.status_code == 200, ok.text
    refused = await client.get("/api/v1/equipements", params=[(name, value)] * (MAX_REPEATS + 1), headers=manager)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == name
