"""Combined OpenAPI document, Swagger UI, health probes and metrics."""

from __future__ import annotations

import socket
from typing import Any

import httpx

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


async def test_combined_openapi_from_two_live_upstreams(start_gateway: Any, upstream: Any) -> None:
    upstream.openapi.update({"auth": AUTH_DOC, "assets": ASSETS_DOC})
    down = closed_port_url()
    try:
        gw = await start_gateway(
            upstreams={name: down for name in ("interventions", "planning", "documents", "notifications")},
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
            assert doc["x-mif-unavailable"] == ["documents", "interventions", "notifications", "planning"]
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
    assert live.json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert set(body["upstreams"]) == {"auth", "assets", "interventions", "planning", "documents", "notifications"}
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
