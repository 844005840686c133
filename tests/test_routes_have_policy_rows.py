"""Every route of every service has a row in the gateway's policy table (mif_gateway.policy): a route
without one is a silent 404 at the gateway. Fast: builds each app (no lifespan, no I/O) and walks its
routes; starts nothing."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from mif_common.suite import ServiceInfo, built_services
from mif_gateway.policy import DEFAULT_POLICY, AccessKind
from mif_gateway.routes import service_for

# Served by each process to its own operators (probes, Prometheus), never through the gateway.
NOT_ROUTED = frozenset({"/health/live", "/health/ready", "/metrics"})
# Reachable only between services: the table lists them as INTERNAL so nobody routes them by accident.
INTERNAL = frozenset(
    {
        ("auth", "GET", "/api/v1/auth/internal/token-states"),
        ("auth", "GET", "/api/v1/auth/internal/token-states/{user_id}"),
    }
)

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _app(svc: ServiceInfo) -> FastAPI:
    app: FastAPI = importlib.import_module(f"{svc.package}.main").create_app()
    return app


def _concrete(path: str, route: BaseRoute) -> str:
    """A path the route serves: integer parameters get a number, the others a token that is not one
    (so a string parameter is never satisfied by a policy row's `{id}`)."""
    dependant = getattr(route, "dependant", None)
    integers = {p.name for p in dependant.path_params if p.field_info.annotation is int} if dependant else set()
    return _PARAM.sub(lambda m: "12" if m.group(1) in integers else "tok-abc123", path)


def _routes(svc: ServiceInfo) -> Iterator[tuple[str, str, str]]:
    """(method, path pattern, concrete path) of each route, HEAD left out (the gateway sends it as GET)."""
    for route in iter_route_contexts(_app(svc).router.routes):
        path = route.path
        if path is None or path in NOT_ROUTED:
            continue
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                yield method, path, _concrete(path, route.original_route)


@pytest.mark.parametrize("svc", built_services(), ids=lambda s: s.name)
def test_every_route_has_a_policy_row(svc: ServiceInfo) -> None:
    routes = list(_routes(svc))
    assert routes, f"{svc.name}: no route found"
    missing = [
        f"{method} {path}"
        for method, path, concrete in routes
        if (svc.name, method, path) not in INTERNAL and DEFAULT_POLICY.match(method, concrete) is None
    ]
    assert missing == [], f"{svc.name}: no row in gateway/mif_gateway/policy.py (404 at the gateway): {missing}"


@pytest.mark.parametrize("svc", built_services(), ids=lambda s: s.name)
def test_the_gateway_sends_every_route_to_its_service(svc: ServiceInfo) -> None:
    wrong = [f"{m} {p} -> {service_for(c)}" for m, p, c in _routes(svc) if service_for(c) != svc.name]
    assert wrong == []


@pytest.mark.parametrize("svc", built_services(), ids=lambda s: s.name)
def test_internal_routes_are_internal_rows(svc: ServiceInfo) -> None:
    for method, path, concrete in _routes(svc):
        if (svc.name, method, path) in INTERNAL:
            rule = DEFAULT_POLICY.match(method, concrete)
            assert rule is not None and rule.access.kind is AccessKind.internal, f"{method} {path}"
