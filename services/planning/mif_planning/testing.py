"""Test helpers other suites reuse (planning's own tests, its consumers' tests, end-to-end tests):
example `data` of the events planning publishes, what it wrote to its outbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.testing.events import Deliver as Deliver
from mif_common.testing.events import example
from mif_planning.events import OccurrenceDue, PlanOverdue, PlanSuspended, TechnicienEvent

Headers = dict[str, str]
Make = Callable[..., Awaitable[dict[str, Any]]]


@dataclass
class Tech:
    """A technician profile made through the API, with the headers of its user."""

    id: int
    user_id: int
    headers: Headers
    body: dict[str, Any]


MakeTech = Callable[..., Awaitable[Tech]]


def technicien_data(technicien_id: int, user_id: int, *, version: int = 1, **fields: Any) -> dict[str, Any]:
    """`data` of a `planning.technicien.<verb>.v1` event (docs/events/planning-contract.md), checked
    against `TechnicienEvent`; `fields` set any other key. Its user is `mif_auth.testing.user_data`'s."""
    return example(
        TechnicienEvent,
        {
            "technicien_id": technicien_id,
            "user_id": user_id,
            "full_name": f"Technicien {user_id}",
            "username": f"tech{user_id}",
            "email": f"tech{user_id}@example.ma",
            "equipe": None,
            "zone": None,
            "disponibilite": "disponible",
            "is_active": True,
            "competences": [],
            "version": version,
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


def occurrence_data(
    planning_id: int, equipement_id: int, due_at: datetime, *, frequence: str = "mensuel", **fields: Any
) -> dict[str, Any]:
    """`data` of a `planning.occurrence.due.v1` event, checked against `OccurrenceDue`; `fields` set any
    other key."""
    return example(
        OccurrenceDue,
        {
            "occurrence_key": f"{planning_id}:{due_at.isoformat()}",
            "planning_id": planning_id,
            "equipement_id": equipement_id,
            "equipement_nom": None,
            "technicien_id": None,
            "due_at": due_at,
            "frequence": frequence,
            "commentaire": "Graissage et contrôle",
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


def overdue_data(planning_id: int, equipement_id: int, due_at: datetime, **fields: Any) -> dict[str, Any]:
    """`data` of a `planning.plan.overdue.v1` event, checked against `PlanOverdue`; `fields` set any
    other key."""
    return example(
        PlanOverdue,
        {
            "planning_id": planning_id,
            "equipement_id": equipement_id,
            "equipement_nom": None,
            "technicien_id": None,
            "occurrence_key": f"{planning_id}:{due_at.isoformat()}",
            "intervention_id": None,
            "due_at": due_at,
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


def suspended_data(planning_id: int, equipement_id: int, due_at: datetime, **fields: Any) -> dict[str, Any]:
    """`data` of a `planning.plan.suspended.v1` event, checked against `PlanSuspended`; `fields` set any
    other key."""
    return example(
        PlanSuspended,
        {
            "planning_id": planning_id,
            "equipement_id": equipement_id,
            "equipement_nom": None,
            "technicien_id": None,
            "frequence": "journalier",
            "due_at": due_at,
            "generated_last_hour": 6,
            "max_per_hour": 6,
            "reason": f"Le plan n°{planning_id} a déjà généré 6 intervention(s) dans la dernière heure "
            "(limite : 6 par heure).",
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


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
