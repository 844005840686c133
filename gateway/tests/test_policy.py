"""The policy table, walked row by row for an anonymous caller and each of the four roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mif_common.auth.principal import Role, role_allows
from mif_gateway.policy import DEFAULT_POLICY, POLICY, AccessKind, Rule
from mif_gateway.routes import service_for

CALLERS = ["anonymous", *[r.value for r in Role]]
CASES = [(rule, who) for rule in POLICY for who in CALLERS]


def expected_status(rule: Rule, who: str) -> int:
    kind = rule.access.kind
    if kind is AccessKind.internal:
        return 404
    if kind is AccessKind.public:
        return 200
    if who == "anonymous":
        return 401
    if kind is AccessKind.authenticated or role_allows(Role(who), rule.access.roles):
        return 200
    return 403


@pytest.mark.parametrize(("rule", "who"), CASES, ids=[f"{r.method} {r.path} as {w}" for r, w in CASES])
async def test_every_row_for_every_caller(
    client: httpx.AsyncClient, bearer: Callable[..., dict[str, str]], rule: Rule, who: str
) -> None:
    headers = {} if who == "anonymous" else bearer(who, user_id=1000 + CALLERS.index(who), client_id=7)
    kwargs: dict[str, Any] = {}
    if rule.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {"probe": True}
    response = await client.request(rule.method, rule.example_path(), headers=headers, **kwargs)
    expected = expected_status(rule, who)
    assert response.status_code == expected, response.text
    if expected == 200:
        assert response.headers["x-upstream"] == "echo"
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if "path" in body:
                assert body["path"] == rule.example_path()
    else:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == expected
        assert problem["request_id"] == response.headers["x-request-id"]
        assert "x-upstream" not in response.headers


def test_every_row_routes_to_a_service() -> None:
    for rule in POLICY:
        assert service_for(rule.example_path()) is not None, rule


def test_rows_are_unique_and_match_themselves() -> None:
    assert len({(r.method, r.path) for r in POLICY}) == len(POLICY)
    for rule in POLICY:
        assert DEFAULT_POLICY.match(rule.method, rule.example_path()) is rule


@pytest.mark.parametrize(
    ("method", "path", "pattern"),
    [
        ("GET", "/api/v1/techniciens/competences", "/api/v1/techniciens/competences"),
        ("POST", "/api/v1/techniciens/competences", "/api/v1/techniciens/competences"),
        ("GET", "/api/v1/techniciens/recommandation", "/api/v1/techniciens/recommandation"),
        ("GET", "/api/v1/techniciens/12", "/api/v1/techniciens/{id}"),
        ("GET", "/api/v1/users/me", "/api/v1/users/me"),
        ("GET", "/api/v1/users/5", "/api/v1/users/{id}"),
        ("PUT", "/api/v1/notifications/read-all", "/api/v1/notifications/read-all"),
        ("GET", "/api/v1/planning/calendrier", "/api/v1/planning/calendrier"),
        ("HEAD", "/api/v1/equipements/3", "/api/v1/equipements/{id}"),
        ("GET", "/api/v1/assets/openapi.json", "/api/v1/assets/openapi.json"),
    ],
)
def test_literal_segments_win_over_placeholders(method: str, path: str, pattern: str) -> None:
    rule = DEFAULT_POLICY.match(method, path)
    assert rule is not None
    assert rule.path == pattern


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/techniciens/abc"),  # {id} is an integer
        ("GET", "/api/v1/users/-1"),
        ("DELETE", "/api/v1/techniciens/competences"),
        ("POST", "/api/v1/interventions/3/teleporter"),
        ("GET", "/api/v1/assets/anything"),
        ("GET", "/api/v1/interventions/3/historique/4"),
    ],
)
def test_unknown_routes_do_not_match(method: str, path: str) -> None:
    assert DEFAULT_POLICY.match(method, path) is None


def test_admin_inherits_responsable_but_not_the_reverse() -> None:
    create_user = DEFAULT_POLICY.match("POST", "/api/v1/users")
    list_clients = DEFAULT_POLICY.match("GET", "/api/v1/clients")
    assert create_user is not None and list_clients is not None
    assert create_user.access.allows(Role.admin)
    assert not create_user.access.allows(Role.responsable)
    assert list_clients.access.allows(Role.admin)
    assert not list_clients.access.allows(Role.technicien)
