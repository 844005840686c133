"""A service's OpenAPI document lists the error answers it really gives, as `Problem`s (mif_common.openapi),
and every problem it answers carries its `instance` and `request_id`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header
from pydantic import BaseModel

from mif_common.auth import CurrentPrincipal
from mif_common.errors import install_error_handlers, problem_response
from mif_common.openapi import PROBLEM_JSON, PROBLEM_SCHEMAS, install_problem_docs, problem_responses
from mif_common.request_context import RequestIdMiddleware


class Body(BaseModel):
    nom: str


def make_app() -> FastAPI:
    app = FastAPI(openapi_url="/openapi.json")
    install_error_handlers(app)

    @app.get("/public/{item_id}")
    async def public_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {}

    @app.put("/items/{item_id}")
    async def update_item(
        item_id: int, body: Body, _: CurrentPrincipal, if_match: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        return {}

    @app.post("/sign-in", responses=problem_responses(401, 429, s401="Wrong password."))
    async def sign_in(body: Body) -> dict[str, str]:
        return {}

    @app.get("/refused")
    async def refused() -> Any:
        return problem_response(401, "No.")  # built without an instance: it is filled in

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    install_problem_docs(app)
    app.add_middleware(RequestIdMiddleware)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def statuses(document: dict[str, Any], path: str, method: str) -> set[int]:
    return {int(s) for s in document["paths"][path][method]["responses"]}


async def test_every_operation_lists_its_error_statuses(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert statuses(document, "/plain", "get") == {200, 400, 503}
    assert statuses(document, "/public/{item_id}", "get") == {200, 400, 404, 422, 503}
    # Authenticated (it lists `security`), a write, a body, an If-Match header.
    put = document["paths"]["/items/{item_id}"]["put"]
    assert put["security"] == [{"bearerAuth": []}]
    assert statuses(document, "/items/{item_id}", "put") == {
        200, 400, 401, 403, 404, 408, 409, 412, 413, 415, 422, 503
    }  # fmt: skip
    # A public write names no resource and has no state to conflict with; its own statuses are kept.
    assert statuses(document, "/sign-in", "post") == {200, 400, 401, 408, 413, 415, 422, 429, 503}
    sign_in = document["paths"]["/sign-in"]["post"]["responses"]
    assert sign_in["401"]["description"] == "Wrong password."
    assert sign_in["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_errors_are_problems_and_fastapi_validation_schemas_are_gone(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert schemas["Problem"] == PROBLEM_SCHEMAS["Problem"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for item in document["paths"].values():
        for operation in item.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert answer["content"] == {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def assert_problem(response: httpx.Response, status: int, path: str) -> dict[str, Any]:
    """The answer is what the `Problem` schema promises."""
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    problem: dict[str, Any] = response.json()
    for name in PROBLEM_SCHEMAS["Problem"]["required"]:
        expected = int if name == "status" else str
        assert isinstance(problem[name], expected), (name, problem)
    assert problem["status"] == status
    assert problem["instance"] == path
    assert problem["request_id"] == response.headers["x-request-id"]
    return problem


async def test_every_problem_has_its_instance_and_request_id(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/refused"), 401, "/refused")
    invalid = assert_problem(await client.get("/public/abc"), 422, "/public/abc")
    assert invalid["errors"] == [{"field": "item_id", "message": invalid["errors"][0]["message"]}]
    assert_problem(await client.put("/items/1", json={"nom": "x"}), 401, "/items/1")
    assert_problem(await client.get("/nowhere"), 404, "/nowhere")


async def test_an_unexpected_error_keeps_its_request_id(client: httpx.AsyncClient) -> None:
    # Starlette answers it outside every middleware, after the request id middleware is done.
    response = await client.get("/crash", headers={"X-Request-ID": "trace-me-42"})
    problem = assert_problem(response, 500, "/crash")
    assert problem["request_id"] == "trace-me-42"
