"""Test helpers other suites reuse (interventions' own tests, end-to-end tests): the `data` of the
events interventions consumes, and what it wrote to its outbox."""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Headers = dict[str, str]
# `deliver(event_type, data, event_id=None)`: hands an event to the consumer path; False for a duplicate.
Deliver = Callable[..., Awaitable[bool]]
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
    }
)


def equipement_data(
    equipement_id: int,
    *,
    nom: str | None = None,
    client_id: int | None = None,
    statut: str = "operationnel",
    version: int = 1,
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    """`data` of an `assets.equipement.*.v1` event (docs/events/assets.md)."""
    return {
        "equipement_id": equipement_id,
        "nom": nom or f"Équipement {equipement_id}",
        "type": "compresseur",
        "localisation": "Hall 1",
        "numero_serie": None,
        "statut": statut,
        "criticite": "standard",
        "client_id": client_id,
        "frequence_entretien": None,
        "version": version,
        "updated_at": (updated_at or datetime.now(UTC)).isoformat(),
    }


def technicien_data(
    technicien_id: int, user_id: int, *, full_name: str | None = None, is_active: bool = True, version: int = 1
) -> dict[str, Any]:
    """`data` of a `planning.technicien.*.v1` event (docs/events/planning-contract.md)."""
    return {
        "technicien_id": technicien_id,
        "user_id": user_id,
        "full_name": full_name or f"Technicien {technicien_id}",
        "username": f"tech{technicien_id}",
        "email": f"tech{technicien_id}@mif.ma",
        "equipe": None,
        "zone": None,
        "disponibilite": "disponible",
        "is_active": is_active,
        "competences": [],
        "version": version,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def occurrence_data(
    planning_id: int,
    equipement_id: int,
    due_at: datetime,
    *,
    technicien_id: int | None = None,
    equipement_nom: str | None = None,
) -> dict[str, Any]:
    """`data` of `planning.occurrence.due.v1`."""
    return {
        "occurrence_key": f"{planning_id}:{due_at.isoformat()}",
        "planning_id": planning_id,
        "equipement_id": equipement_id,
        "equipement_nom": equipement_nom,
        "technicien_id": technicien_id,
        "due_at": due_at.isoformat(),
        "frequence": "mensuel",
        "commentaire": "Graissage et contrôle",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


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
        data = equipement_data(equipement_id, client_id=client_id, statut=statut, nom=nom)
        assert await self.deliver("assets.equipement.created.v1", data)
        return equipement_id

    async def technicien(self, *, is_active: bool = True, full_name: str | None = None) -> Tech:
        tech = Tech(id=new_id(), user_id=new_id(), headers={})
        tech.headers = self.auth_headers("technicien", user_id=tech.user_id)
        data = technicien_data(tech.id, tech.user_id, is_active=is_active, full_name=full_name)
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
