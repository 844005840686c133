"""Combined OpenAPI document, Swagger UI, health probes and metrics."""

from __future__ import annotations

import copy
import socket
from typing import Any

import httpx

from mif_common.openapi import PROBLEM_SCHEMAS, document_service_errors
from mif_common.suite import ALL_SERVICES
from mif_common.version import build_info
from mif_gateway.docs import merge_documents
from mif_gateway.policy import DEFAULT_POLICY


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def service_doc(title: str, paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"OAuth2PasswordBearer": {"type": "oauth2", "flows": {}}},
        },
        "tags": [{"name": title, "description": f"{title} operations"}],
    }


def op(ref: str, op_id: str, *, tags: list[str] | None = None) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "tags": tags or [],
        "security": [{"OAuth2PasswordBearer": []}],
        "responses": {
            "200": {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}},
            "422": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}},
        },
    }


AUTH_DOC = service_doc(
    "auth",
    {
        "/api/v1/auth/me": {"get": op("MeOut", "me", tags=["auth"])},
        "/api/v1/users/{user_id}": {"get": op("UserOut", "get_user"), "delete": op("UserOut", "delete_user")},
        "/api/v1/auth/internal/token-states": {"get": op("UserOut", "token_states")},
        "/health/ready": {"get": op("UserOut", "ready")},
    },
    {
        "MeOut": {"type": "object", "properties": {"user": {"$ref": "#/components/schemas/UserOut"}}},
        "UserOut": {"type": "object"},
        "HTTPValidationError": {"type": "object", "title": "auth flavour"},
    },
)
ASSETS_DOC = service_doc(
    "assets",
    {
        "/api/v1/clients/": {"get": op("ClientOut", "list_clients", tags=["clients"])},
        "/api/v1/equipements/{equipement_id}": {"put": op("ClientOut", "update_equipement")},
        "/api/v1/users": {"get": op("ClientOut", "not_ours")},  # another service's prefix: dropped
    },
    {"ClientOut": {"type": "object"}, "HTTPValidationError": {"type": "object", "title": "assets flavour"}},
)


def test_merge_prefixes_components_and_rewrites_refs() -> None:
    merged = merge_documents({"auth": AUTH_DOC, "assets": ASSETS_DOC, "planning": None}, DEFAULT_POLICY)
    schemas = merged["components"]["schemas"]
    assert schemas["auth_HTTPValidationError"]["title"] == "auth flavour"
    assert schemas["assets_HTTPValidationError"]["title"] == "assets flavour"
    assert "HTTPValidationError" not in schemas
    assert schemas["auth_MeOut"]["properties"]["user"]["$ref"] == "#/components/schemas/auth_UserOut"
    me = merged["paths"]["/api/v1/auth/me"]["get"]
    assert me["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/auth_MeOut"
    assert me["operationId"] == "auth_me"
    assert me["x-mif-access"] == "authenticated"
    # Identical security schemes are shown once, under their own name.
    assert list(merged["components"]["securitySchemes"]) == ["OAuth2PasswordBearer"]
    assert me["security"] == [{"OAuth2PasswordBearer": []}]
    user = merged["paths"]["/api/v1/users/{user_id}"]
    assert user["get"]["x-mif-access"] == "authenticated"  # auth itself allows managers or oneself
    assert user["delete"]["x-mif-access"] == "roles: admin"
    # Internal, unrouted and foreign paths are not advertised.
    assert "/api/v1/auth/internal/token-states" not in merged["paths"]
    assert "/health/ready" not in merged["paths"]
    assert "/api/v1/users" not in merged["paths"]
    assert merged["paths"]["/api/v1/clients/"]["get"]["operationId"] == "assets_list_clients"
    assert merged["x-mif-unavailable"] == ["planning"]
    assert "planning" in merged["info"]["description"]
    assert {t["name"] for t in merged["tags"]} >= {"auth", "assets", "clients"}


def test_merge_documents_every_error_as_a_problem_once() -> None:
    auth = copy.deepcopy(AUTH_DOC)
    assets = copy.deepcopy(ASSETS_DOC)
    for doc in (auth, assets):  # as the services serve them (mif_common.openapi)
        document_service_errors(doc)
    merged = merge_documents({"auth": auth, "assets": assets}, DEFAULT_POLICY)
    schemas = merged["components"]["schemas"]
    # One Problem, unprefixed, however many services define it.
    assert schemas["Problem"] == PROBLEM_SCHEMAS["Problem"]
    assert not any(name.endswith("_Problem") for name in schemas)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    delete = merged["paths"]["/api/v1/users/{user_id}"]["delete"]["responses"]
    put = merged["paths"]["/api/v1/equipements/{equipement_id}"]["put"]["responses"]
    me = merged["paths"]["/api/v1/auth/me"]["get"]["responses"]
    # The services' own statuses, and the gateway's: rate limits and an unavailable, closing or silent service.
    assert {"400", "401", "403", "404", "409", "422", "429", "502", "503", "504"} <= set(delete)
    assert {"400", "401", "403", "429", "502", "503", "504"} <= set(me)
    assert "404" not in me  # no path parameter, not a write
    for responses in (delete, put, me):
        for status, answer in responses.items():
            if int(status) >= 400:
                assert answer["content"] == problem, status
    assert delete["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert delete["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_public_operations_have_no_token_statuses_from_the_gateway() -> None:
    doc = service_doc("auth", {"/api/v1/auth/refresh": {"post": {"responses": {"200": {}}}}}, {})
    merged = merge_documents({"auth": doc}, DEFAULT_POLICY)
    responses = merged["paths"]["/api/v1/auth/refresh"]["post"]["responses"]
    assert set(responses) == {"200", "400", "429", "502", "503", "504"}
    assert merged["components"]["schemas"]["Problem"] == PROBLEM_SCHEMAS["Problem"]


async def test_combined_openapi_from_two_live_upstreams(start_gateway: Any, upstream: Any) -> None:
    upstream.openapi.update({"auth": AUTH_DOC, "assets": ASSETS_DOC})
    down = closed_port_url()
    try:
        gw = await start_gateway(
            upstreams={
                name: down
                for name in ("interventions", "planning", "documents", "notifications", "inventory", "reports")
            },
            revocation_enabled=False,
            openapi_cache_seconds=0,
        )
        async with gw.client() as c:
            response = await c.get("/openapi.json")
            assert response.status_code == 200
            doc = response.json()
            assert "/api/v1/auth/me" in doc["paths"]
            assert "/api/v1/equipements/{equipement_id}" in doc["paths"]
            assert {"auth_UserOut", "assets_ClientOut"} <= set(doc["components"]["schemas"])
            assert doc["x-mif-unavailable"] == [
                "documents",
                "interventions",
                "inventory",
                "notifications",
                "planning",
                "reports",
            ]
            assert "Unavailable right now" in doc["info"]["description"]

            ui = await c.get("/docs")
            assert ui.status_code == 200
            assert "swagger-ui" in ui.text and "/openapi.json" in ui.text

            # Each service's own document is reachable through the gateway, anonymously.
            own = await c.get("/api/v1/assets/openapi.json")
            assert own.status_code == 200
            assert own.json()["info"]["title"] == "assets"
    finally:
        upstream.openapi.clear()


async def test_health_and_metrics(start_gateway: Any, gateway: Any, client: httpx.AsyncClient, bearer: Any) -> None:
    live = await client.get("/health/live")
    build = build_info("gateway")
    assert live.json() == {"status": "ok", "service": "gateway", "version": build.version, "commit": build.commit}
    assert live.headers["x-mif-version"] == build.header
    relayed = await client.get("/api/v1/planning", headers=bearer("responsable"))
    assert relayed.headers["x-mif-version"] == build.header  # the echo upstream names no build of its own
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert set(body["upstreams"]) == {s.name for s in ALL_SERVICES}
    assert all(v == "ok" for v in body["upstreams"].values())
    assert body["revocation"]["events_subscribed"] is True
    assert body["revocation"]["snapshot_loaded"] is True

    gw = await start_gateway(upstreams={"documents": closed_port_url()}, revocation_enabled=False)
    async with gw.client() as c:
        degraded = await c.get("/health/ready")
        assert degraded.status_code == 200
        assert degraded.json()["status"] == "degraded"
        assert degraded.json()["upstreams"]["documents"].startswith("unavailable")

    await client.get("/api/v1/interventions/12", headers=bearer("admin"))
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'route="/api/v1/interventions/{id}"' in metrics.text
    assert 'service="gateway"' in metrics.text
