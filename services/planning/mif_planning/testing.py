"""Test helpers other suites reuse (planning's own tests, end-to-end tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Headers = dict[str, str]
# `deliver(event_type, data, event_id=None, time=None)` hands an event to the consumer path.
Deliver = Callable[..., Awaitable[bool]]
Make = Callable[..., Awaitable[dict[str, Any]]]


@dataclass
class Tech:
    """A technician profile made through the API, with the headers of its user."""

    id: int
    user_id: int
    headers: Headers
    body: dict[str, Any]


MakeTech = Callable[..., Awaitable[Tech]]


def user_data(user_id: int, *, role: str = "technicien", is_active: bool = True, **extra: Any) -> dict[str, Any]:
    """`data` of an `auth.user.*.v1` event (services/auth/mif_auth/events.py)."""
    return {
        "user_id": user_id,
        "username": f"user{user_id}",
        "email": f"user{user_id}@mif.ma",
        "full_name": f"Technicien {user_id}",
        "role": role,
        "client_id": None,
        "is_active": is_active,
        "token_version": 0,
        **extra,
    }


def equipement_data(
    equipement_id: int, *, nom: str | None = None, statut: str = "operationnel", version: int = 1, **extra: Any
) -> dict[str, Any]:
    """`data` of an `assets.equipement.*.v1` event (docs/events/assets.md)."""
    return {
        "equipement_id": equipement_id,
        "nom": nom or f"Compresseur {equipement_id}",
        "type": "compresseur",
        "localisation": "Atelier A",
        "numero_serie": None,
        "statut": statut,
        "criticite": "standard",
        "client_id": None,
        "frequence_entretien": None,
        "version": version,
        "updated_at": datetime.now(UTC).isoformat(),
        **extra,
    }


def intervention_data(
    intervention_id: int,
    equipement_id: int,
    statut: str,
    *,
    technicien_id: int | None = None,
    occurred_at: datetime | None = None,
    type: str = "corrective",
    priorite: str = "normale",
    **extra: Any,
) -> dict[str, Any]:
    """`data` of an `interventions.intervention.<verb>.v1` event (docs/events/interventions-contract.md)."""
    return {
        "intervention_id": intervention_id,
        "equipement_id": equipement_id,
        "client_id": None,
        "technicien_id": technicien_id,
        "statut": statut,
        "previous_statut": None,
        "type": type,
        "priorite": priorite,
        "urgence": priorite == "urgente",
        "titre": f"Intervention {intervention_id}",
        "actor_id": 77,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        **extra,
    }


async def outbox_envelopes(session: AsyncSession, *, type_prefix: str = "planning.") -> list[Any]:
    """Envelopes in the planning outbox whose type starts with `type_prefix`, oldest first."""
    rows = await session.execute(
        text("SELECT envelope FROM outbox WHERE type LIKE :p ORDER BY created_at, id"), {"p": f"{type_prefix}%"}
    )
    return [r.envelope for r in rows]


class RoutingTransport(httpx.AsyncBaseTransport):
    """Sends each request to the in-process app serving its host (`auth.test`, `assets.test`, ...); an
    unknown host is a connection error, as a service that is down."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.routes = routes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self.routes.get(request.url.host)
        if transport is None:
            raise httpx.ConnectError(f"no service at {request.url.host}", request=request)
        return await transport.handle_async_request(request)
