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
from mif_planning.events import ChecklistEvent, OccurrenceDue, PlanOverdue, PlanSuspended, TechnicienEvent

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


# Steps of an example checklist template: one of each type, the measure bounded and feeding a meter.
ETAPES_EXEMPLE: list[dict[str, Any]] = [
    {"ordre": 1, "type": "verification", "libelle": "Consigner la machine", "obligatoire": True},
    {
        "ordre": 2,
        "type": "mesure",
        "libelle": "Mesurer la température",
        "obligatoire": True,
        "unite": "°C",
        "min": 20.0,
        "max": 80.0,
        "compteur_code": "temperature",
    },
    {"ordre": 3, "type": "texte", "libelle": "Observations", "obligatoire": False},
    {"ordre": 4, "type": "photo", "libelle": "Photo du joint", "obligatoire": True},
]


def etapes_data(etapes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Steps as planning's events carry them (every key present)."""
    blank = {"unite": None, "min": None, "max": None, "compteur_code": None}
    return [blank | e for e in (ETAPES_EXEMPLE if etapes is None else etapes)]


def checklist_snapshot(checklist_id: int, *, nom: str = "Révision pompe", etapes: Any = None) -> dict[str, Any]:
    """The optional `checklist` of a `planning.occurrence.due.v1` event."""
    return {"id": checklist_id, "nom": nom, "etapes": etapes_data(etapes)}


def checklist_data(checklist_id: int, *, version: int = 1, etapes: Any = None, **fields: Any) -> dict[str, Any]:
    """`data` of a `planning.checklist.<verb>.v1` event, checked against `ChecklistEvent`; `etapes`
    defaults to `ETAPES_EXEMPLE`; `fields` set any other key."""
    return example(
        ChecklistEvent,
        {
            "checklist_id": checklist_id,
            "nom": f"Checklist {checklist_id}",
            "description": None,
            "etapes": etapes_data(etapes),
            "version": version,
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


def occurrence_data(
    planning_id: int,
    equipement_id: int,
    due_at: datetime,
    *,
    frequence: str = "mensuel",
    checklist: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """`data` of a `planning.occurrence.due.v1` event, checked against `OccurrenceDue`; `checklist`
    (e.g. `checklist_snapshot(...)`) is the plan's template, left out when None (as an older event);
    `fields` set any other key."""
    if checklist is not None:
        fields["checklist"] = checklist
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


def compteur_data(
    compteur_id: int,
    equipement_id: int,
    *,
    code: str = "heures_marche",
    nature: str = "compteur",
    unite: str = "h",
    version: int = 1,
    **fields: Any,
) -> dict[str, Any]:
    """`data` of an `assets.compteur.<verb>.v1` event (the contract of issue #17, docs/planning.md);
    `fields` set any other key."""
    return {
        "compteur_id": compteur_id,
        "equipement_id": equipement_id,
        "code": code,
        "nom": code.replace("_", " ").capitalize(),
        "nature": nature,
        "unite": unite,
        "version": version,
        "updated_at": datetime.now(UTC).isoformat(),
    } | fields


def releves_data(
    compteur: dict[str, Any],
    releves: list[tuple[datetime, float]] | list[tuple[datetime, float, bool]],
    *,
    source: str = "api",
) -> dict[str, Any]:
    """`data` of an `assets.releves.recorded.v1` event: one batch of new readings of the meter whose
    `compteur_data` is `compteur`, as (horodatage, valeur[, remise_a_zero]) in any order."""
    rows = sorted((r[0], float(r[1]), bool(r[2]) if len(r) > 2 else False) for r in releves)
    valeurs = [v for _, v, _ in rows]
    return {
        "compteur_id": compteur["compteur_id"],
        "equipement_id": compteur["equipement_id"],
        "code": compteur["code"],
        "nature": compteur["nature"],
        "unite": compteur["unite"],
        "source": source,
        "nombre": len(rows),
        "premier": rows[0][0].isoformat(),
        "dernier": rows[-1][0].isoformat(),
        "min": min(valeurs),
        "max": max(valeurs),
        "derniere_valeur": valeurs[-1],
        "remise_a_zero": any(z for _, _, z in rows),
        "releves": [{"horodatage": t.isoformat(), "valeur": v, "remise_a_zero": z} for t, v, z in rows],
        "occurred_at": datetime.now(UTC).isoformat(),
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
