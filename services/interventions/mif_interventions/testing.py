"""Test helpers other suites reuse (interventions' own tests, its consumers' tests, end-to-end tests):
example `data` of the events interventions publishes, and what it wrote to its outbox."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import equipement_data
from mif_common.testing.events import Deliver as Deliver
from mif_common.testing.events import example
from mif_interventions.events import InterventionEvent
from mif_planning.testing import technicien_data

Headers = dict[str, str]
ADMIN_ID, MANAGER_ID = 1001, 1002

# Ids of replica rows (equipment, technicians, organisations, users) never repeat within a session.
_ids = itertools.count(random.randint(10_000, 10**6) * 1000)  # noqa: S311 - not a secret


def new_id() -> int:
    return next(_ids)


# The exact keys of `data` in docs/events/interventions-contract.md.
CONTRACT_FIELDS = frozenset(
    {
        "intervention_id",
        "equipement_id",
        "client_id",
        "technicien_id",
        "statut",
        "previous_statut",
        "type",
        "priorite",
        "urgence",
        "titre",
        "actor_id",
        "occurred_at",
        "planning_id",
        "occurrence_key",
        "date_creation",
        "date_limite",
        "date_debut_travaux",
        "date_cloture",
        "duree_reelle",
    }
)


def intervention_data(
    intervention_id: int,
    statut: str = "ouverte",
    *,
    equipement_id: int = 1,
    priorite: str = "normale",
    occurred_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """`data` of an `interventions.intervention.<verb>.v1` event (docs/events/interventions-contract.md),
    checked against `InterventionEvent`; `fields` set any other key."""
    return example(
        InterventionEvent,
        {
            "intervention_id": intervention_id,
            "equipement_id": equipement_id,
            "client_id": None,
            "technicien_id": None,
            "statut": statut,
            "previous_statut": None,
            "type": "corrective",
            "priorite": priorite,
            "urgence": priorite == "urgente",
            "titre": f"Intervention {intervention_id}",
            "actor_id": 77,
            "occurred_at": occurred_at or datetime.now(UTC),
        }
        | fields,
    )


async def outbox_envelopes(session: AsyncSession, *, intervention_id: int) -> list[dict[str, Any]]:
    """Envelopes in the outbox about one intervention (visible inside the writing transaction), oldest first."""
    rows = await session.execute(
        text("SELECT envelope FROM outbox WHERE subject = :s AND type LIKE 'interventions.%' ORDER BY created_at"),
        {"s": str(intervention_id)},
    )
    return [dict(r.envelope) for r in rows]


@dataclass
class Tech:
    id: int
    user_id: int
    headers: Headers


@dataclass
class World:
    """Replica rows and callers for a test: equipment, technicians, organisations' users."""

    http: httpx.AsyncClient
    deliver: Deliver
    auth_headers: Callable[..., Headers]

    @property
    def manager(self) -> Headers:
        return self.auth_headers("responsable", user_id=MANAGER_ID)

    @property
    def admin(self) -> Headers:
        return self.auth_headers("admin", user_id=ADMIN_ID)

    def client_user(self, client_id: int, user_id: int | None = None) -> Headers:
        return self.auth_headers("client", user_id=user_id or new_id(), client_id=client_id)

    async def equipement(
        self, *, client_id: int | None = None, statut: str = "operationnel", nom: str | None = None
    ) -> int:
        equipement_id = new_id()
        named: dict[str, Any] = {"nom": nom} if nom else {}
        data = equipement_data(equipement_id, client_id=client_id, statut=statut, **named)
        assert await self.deliver("assets.equipement.created.v1", data)
        return equipement_id

    async def technicien(self, *, is_active: bool = True, full_name: str | None = None) -> Tech:
        tech = Tech(id=new_id(), user_id=new_id(), headers={})
        tech.headers = self.auth_headers("technicien", user_id=tech.user_id)
        named: dict[str, Any] = {"full_name": full_name} if full_name else {}
        data = technicien_data(tech.id, tech.user_id, is_active=is_active, **named)
        assert await self.deliver("planning.technicien.created.v1", data)
        return tech

    async def intervention(self, headers: Headers | None = None, **fields: Any) -> dict[str, Any]:
        body = {"titre": "Fuite d'huile", "type": "corrective", **fields}
        if "equipement_id" not in body:
            body["equipement_id"] = await self.equipement()
        response = await self.http.post("/api/v1/interventions", json=body, headers=headers or self.manager)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def act(
        self, intervention_id: int, action: str, headers: Headers | None = None, **body: Any
    ) -> httpx.Response:
        return await self.http.post(
            f"/api/v1/interventions/{intervention_id}/{action}", json=body or None, headers=headers or self.manager
        )
