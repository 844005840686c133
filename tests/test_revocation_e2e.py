"""Revocation everywhere, not only at the edge (issue 13, items 3 and 4): the real processes, each service
called on its own port as well as through the gateway.

- a deactivated user's still-unexpired token is refused by every service directly within seconds;
- a correctly signed token for a user id that does not exist is refused by the gateway and the services;
- deactivating a client organisation refuses its users' tokens and sign-in; reactivating restores sign-in,
  while tokens issued before the deactivation stay dead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mif_auth.config import AuthSettings
from mif_auth.keys import KeyRing
from mif_auth.models import User
from mif_auth.testing import PASSWORD
from mif_auth.tokens import access_token
from tests.support import Suite, wait_for

pytestmark = pytest.mark.e2e

# One authenticated read per service, answered 200 to a manager (and to a client user) while the token holds.
READS = {
    "interventions": "/api/v1/interventions",
    "assets": "/api/v1/equipements",
    "notifications": "/api/v1/notifications/user/me",
    "documents": "/api/v1/documents",
}


def direct(suite: Suite, service: str) -> str:
    """The service's own base URL (not the gateway's)."""
    process = {
        "interventions": suite.interventions,
        "assets": suite.assets,
        "notifications": suite.notifications,
        "documents": suite.documents,
        "planning": suite.planning,
    }[service]
    return process.url


def statuses(suite: Suite, headers: dict[str, str], reads: dict[str, str] = READS) -> dict[str, int]:
    return {
        name: httpx.get(direct(suite, name) + path, headers=headers, timeout=10).status_code
        for name, path in reads.items()
    }


def signed_for(suite: Suite, *, user_id: int, role: str = "admin", client_id: int | None = None) -> dict[str, str]:
    """A token signed with the suite's own auth key (the one the JWKS publishes) for any user id."""
    settings = AuthSettings(key_dir=Path(suite.env["MIF_AUTH_KEY_DIR"]), signing_key_file=None, previous_key_files=[])
    user = User(id=user_id, role=role, username=f"ghost{user_id}", client_id=client_id, token_version=0)
    return {"Authorization": f"Bearer {access_token(user, keyring=KeyRing.from_settings(settings), settings=settings)}"}


def test_a_deactivated_users_token_is_refused_by_every_service_directly_within_seconds(
    suite: Suite, admin_headers: dict[str, str], create_user: Callable[..., Any]
) -> None:
    manager = create_user("responsable")
    reads = {**READS, "planning": "/api/v1/planning"}
    # Signed in a moment ago: each service accepts the token on its own port (asking auth once if the
    # user's creation event has not reached it yet).
    assert statuses(suite, manager["headers"], reads) == dict.fromkeys(reads, 200)

    assert httpx.delete(f"{suite.url}/api/v1/users/{manager['id']}", headers=admin_headers).status_code == 204
    started = time.monotonic()
    refused: dict[str, float] = {}

    def all_refused() -> bool:
        for name, path in reads.items():
            if name not in refused:
                response = httpx.get(direct(suite, name) + path, headers=manager["headers"], timeout=10)
                if response.status_code == 401:
                    assert response.headers["content-type"] == "application/problem+json"
                    assert response.json()["detail"] == "This account is deactivated."
                    refused[name] = time.monotonic() - started
        return len(refused) == len(reads)

    wait_for(all_refused, timeout=3, what=f"every service refusing the deactivated user (so far: {refused})")
    # And through the gateway, of course.
    assert httpx.get(f"{suite.url}/api/v1/interventions", headers=manager["headers"]).status_code == 401


def test_a_correctly_signed_token_for_a_user_who_does_not_exist_is_refused_everywhere(
    suite: Suite, admin_headers: dict[str, str]
) -> None:
    # The key really signs: the same minting for the bootstrap admin (id 1 or whatever it is) is accepted.
    me = httpx.get(f"{suite.url}/api/v1/auth/me", headers=admin_headers).json()
    genuine = signed_for(suite, user_id=me["id"], role="admin")
    assert httpx.get(f"{suite.url}/api/v1/interventions", headers=genuine).status_code == 200

    ghost = signed_for(suite, user_id=900_000_000 + uuid.uuid4().int % 1_000_000, role="admin")
    through_gateway = httpx.get(f"{suite.url}/api/v1/interventions", headers=ghost)
    assert through_gateway.status_code == 401
    assert through_gateway.headers["content-type"] == "application/problem+json"
    assert through_gateway.json()["detail"] == "This access token names an account that does not exist."
    for name, path in {**READS, "planning": "/api/v1/planning"}.items():
        response = httpx.get(direct(suite, name) + path, headers=ghost, timeout=10)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "This access token names an account that does not exist.", name
    # Asked again (the answer is remembered): still refused.
    assert httpx.get(direct(suite, "assets") + READS["assets"], headers=ghost).status_code == 401


def test_deactivating_an_organisation_refuses_its_users_and_reactivating_restores_sign_in(
    suite: Suite, admin_headers: dict[str, str], create_user: Callable[..., Any]
) -> None:
    created = httpx.post(
        f"{suite.url}/api/v1/clients",
        json={"nom_entreprise": f"Briqueterie {uuid.uuid4().hex[:6]}"},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    organisation = created.json()
    cliente = create_user("client", client_id=organisation["id"])
    old = cliente["headers"]
    assert statuses(suite, old) == dict.fromkeys(READS, 200)
    assert httpx.get(f"{suite.url}/api/v1/interventions", headers=old).status_code == 200

    deactivated = httpx.delete(f"{suite.url}/api/v1/clients/{organisation['id']}", headers=admin_headers)
    assert deactivated.status_code == 204

    # assets → auth (new token versions) → the gateway's and every service's token states.
    def refused_everywhere() -> bool:
        answers = [httpx.get(f"{suite.url}/api/v1/interventions", headers=old)]
        answers += [httpx.get(direct(suite, name) + path, headers=old) for name, path in READS.items()]
        return all(a.status_code == 401 for a in answers)

    wait_for(refused_everywhere, timeout=10, what="the organisation's user refused by the gateway and the services")
    # Creating an intervention, as the probe did, is refused by the service itself too.
    create = httpx.post(
        direct(suite, "interventions") + "/api/v1/interventions",
        json={"titre": "Fuite", "type": "corrective", "equipement_id": 1},
        headers=old,
    )
    assert create.status_code == 401 and create.headers["content-type"] == "application/problem+json"

    def sign_in() -> httpx.Response:
        return httpx.post(
            f"{suite.url}/api/v1/auth/login", data={"username": cliente["username"], "password": PASSWORD}
        )

    refused = sign_in()
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == (
        f"The client organisation '{organisation['nom_entreprise']}' of this account is deactivated; "
        "contact your maintenance provider."
    )

    reactivated = httpx.put(
        f"{suite.url}/api/v1/clients/{organisation['id']}", json={"is_active": True}, headers=admin_headers
    )
    assert reactivated.status_code == 200, reactivated.text
    # Polled on auth's own token state rather than by signing in (refused sign-ins count towards a lockout).
    state_url = f"{suite.auth.url}/api/v1/auth/internal/token-states/{cliente['id']}"
    wait_for(
        lambda: httpx.get(state_url).json()["organisation_active"], timeout=10, what="auth hearing of the reactivation"
    )
    again = sign_in()
    assert again.status_code == 200, again.text
    fresh = {"Authorization": f"Bearer {again.json()['access_token']}"}
    # The new token works at once, through the gateway and on each service's own port (a token newer
    # than a process's news of its user makes it ask auth rather than refuse).
    assert httpx.get(f"{suite.url}/api/v1/interventions", headers=fresh).status_code == 200
    assert statuses(suite, fresh) == dict.fromkeys(READS, 200)
    # The token issued before the deactivation stays dead.
    assert httpx.get(f"{suite.url}/api/v1/interventions", headers=old).status_code == 401
    assert statuses(suite, old) == dict.fromkeys(READS, 401)
