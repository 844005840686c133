"""Technicians' availability and workload follow the interventions events (DOMAIN.md §4), through the
real consumer path; the recommendation ranks technicians from them."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_interventions.testing import intervention_data
from mif_planning.handlers import HANDLERS
from mif_planning.testing import Deliver, Headers, Make, MakeTech, outbox_envelopes

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
EQUIPEMENT = 321
_ids = itertools.count(700_001)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def state(client: httpx.AsyncClient, manager: Headers, technicien_id: int) -> tuple[str, int]:
    body = (await client.get(f"/api/v1/techniciens/{technicien_id}", headers=manager)).json()
    return body["disponibilite"], body["charge_travail"]


def event(verb: str) -> str:
    return f"interventions.intervention.{verb}.v1"


def test_every_interventions_verb_and_the_user_and_equipment_events_have_a_handler() -> None:
    verbs = [
        "created",
        "assigned",
        "unassigned",
        "started",
        "paused",
        "resumed",
        "closed",
        "cancelled",
        "archived",
        "updated",
        "late",
    ]
    assert {t for t in HANDLERS if t.startswith("interventions.")} == {event(v) for v in verbs}
    assert {t for t in HANDLERS if t.startswith("auth.")} == {
        f"auth.user.{v}.v1" for v in ("created", "updated", "deactivated", "activated")
    }
    assert {t for t in HANDLERS if t.startswith("assets.")} == {
        f"assets.equipement.{v}.v1" for v in ("created", "updated", "status_changed", "retired", "deleted")
    } | {f"assets.compteur.{v}.v1" for v in ("created", "updated", "deleted")} | {"assets.releves.recorded.v1"}


async def test_busy_while_an_assigned_intervention_is_in_progress(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, deliver: Deliver, db_session: AsyncSession
) -> None:
    tech = await make_technicien()
    a, b = next(_ids), next(_ids)
    await deliver(
        event("created"),
        intervention_data(a, "affectee", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(0)),
    )
    await deliver(
        event("created"),
        intervention_data(b, "affectee", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(1)),
    )
    assert await state(client, manager, tech.id) == ("disponible", 2)
    await deliver(
        event("started"),
        intervention_data(a, "en_cours", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(2)),
    )
    assert await state(client, manager, tech.id) == ("occupe", 2)
    await deliver(
        event("started"),
        intervention_data(b, "en_cours", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(3)),
    )
    await deliver(
        event("paused"),
        intervention_data(a, "en_attente", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(4)),
    )
    assert await state(client, manager, tech.id) == ("occupe", 2)  # b is still in progress
    await deliver(
        event("closed"),
        intervention_data(b, "cloturee", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(5)),
    )
    assert await state(client, manager, tech.id) == ("disponible", 1)
    await deliver(
        event("cancelled"),
        intervention_data(a, "annulee", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(6)),
    )
    assert await state(client, manager, tech.id) == ("disponible", 0)
    published = [
        (e["data"]["disponibilite"], e["data"]["version"])
        for e in await outbox_envelopes(db_session, type_prefix="planning.technicien.")
        if e["data"]["technicien_id"] == tech.id
    ]
    assert published == [("disponible", 1), ("occupe", 2), ("disponible", 3)]


async def test_an_absence_set_by_a_person_is_never_overridden(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, deliver: Deliver
) -> None:
    tech = await make_technicien()
    i = next(_ids)
    await deliver(
        event("started"),
        intervention_data(i, "en_cours", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(0)),
    )
    assert (await state(client, manager, tech.id))[0] == "occupe"
    for absence in ("conge", "formation", "indisponible"):
        await client.put(f"/api/v1/techniciens/{tech.id}", json={"disponibilite": absence}, headers=tech.headers)
        await deliver(
            event("updated"), intervention_data(i, "en_cours", equipement_id=EQUIPEMENT, technicien_id=tech.id)
        )
        await deliver(
            event("closed"),
            intervention_data(
                i, "cloturee", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=datetime.now(UTC)
            ),
        )
        assert (await state(client, manager, tech.id))[0] == absence


async def test_a_reassignment_frees_the_previous_technician(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, deliver: Deliver
) -> None:
    first, second = await make_technicien(), await make_technicien()
    i = next(_ids)
    await deliver(
        event("started"),
        intervention_data(i, "en_cours", equipement_id=EQUIPEMENT, technicien_id=first.id, occurred_at=at(0)),
    )
    assert await state(client, manager, first.id) == ("occupe", 1)
    # Paused, reassigned to the second technician, resumed by them.
    await deliver(
        event("paused"),
        intervention_data(i, "en_attente", equipement_id=EQUIPEMENT, technicien_id=first.id, occurred_at=at(1)),
    )
    await deliver(
        event("assigned"),
        intervention_data(i, "affectee", equipement_id=EQUIPEMENT, technicien_id=second.id, occurred_at=at(2)),
    )
    await deliver(
        event("started"),
        intervention_data(i, "en_cours", equipement_id=EQUIPEMENT, technicien_id=second.id, occurred_at=at(3)),
    )
    assert await state(client, manager, first.id) == ("disponible", 0)
    assert await state(client, manager, second.id) == ("occupe", 1)
    await deliver(
        event("unassigned"),
        intervention_data(i, "ouverte", equipement_id=EQUIPEMENT, technicien_id=None, occurred_at=at(4)),
    )
    assert await state(client, manager, second.id) == ("disponible", 0)


async def test_older_events_and_duplicates_change_nothing(
    client: httpx.AsyncClient, manager: Headers, make_technicien: MakeTech, deliver: Deliver, db_session: AsyncSession
) -> None:
    tech = await make_technicien()
    i = next(_ids)
    closed = intervention_data(i, "cloturee", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(10))
    event_id = str(uuid.uuid4())
    assert await deliver(event("closed"), closed, event_id=event_id) is True
    assert await deliver(event("closed"), closed, event_id=event_id) is False
    await deliver(
        event("started"),
        intervention_data(i, "en_cours", equipement_id=EQUIPEMENT, technicien_id=tech.id, occurred_at=at(5)),
    )
    assert await state(client, manager, tech.id) == ("disponible", 0)
    row = (
        await db_session.execute(text("SELECT statut FROM intervention_ref WHERE intervention_id = :i"), {"i": i})
    ).one()
    assert row.statut == "cloturee"


async def test_events_about_unknown_technicians_only_feed_the_replica(
    deliver: Deliver, db_session: AsyncSession
) -> None:
    i = next(_ids)
    assert await deliver(
        event("started"), intervention_data(i, "en_cours", equipement_id=EQUIPEMENT, technicien_id=99_999_999)
    )
    assert (
        await db_session.scalar(text("SELECT technicien_id FROM intervention_ref WHERE intervention_id = :i"), {"i": i})
        == 99_999_999
    )


@pytest.mark.parametrize(
    "data",
    [
        {"intervention_id": 1},
        intervention_data(
            1, "ouverte", equipement_id=EQUIPEMENT, occurred_at=datetime(2026, 3, 1, 8, 0)
        ),  # no time zone
        intervention_data(0, "ouverte", equipement_id=EQUIPEMENT),
    ],
)
async def test_a_malformed_event_is_permanent_and_writes_nothing(
    deliver: Deliver, db_session: AsyncSession, data: dict[str, Any]
) -> None:
    event_id = str(uuid.uuid4())
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver(event("created"), data, event_id=event_id)
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}) == 0


# --- recommendation -----------------------------------------------------------------------------


async def test_recommendation_ranks_by_competence_then_availability_then_workload(
    client: httpx.AsyncClient,
    manager: Headers,
    make_technicien: MakeTech,
    make_competence: Make,
    deliver: Deliver,
    known_equipement: Callable[..., Any],
) -> None:
    hydraulique = await make_competence(nom="Hydraulique")
    eid = await known_equipement()
    expert_busy = await make_technicien(competences=[{"id": hydraulique["id"], "niveau": "expert"}])
    expert_free_loaded = await make_technicien(competences=[{"id": hydraulique["id"], "niveau": "expert"}])
    expert_free = await make_technicien(competences=[{"id": hydraulique["id"], "niveau": "expert"}])
    debutant = await make_technicien(competences=[{"id": hydraulique["id"], "niveau": "debutant"}])
    novice = await make_technicien()
    on_leave = await make_technicien(competences=[{"id": hydraulique["id"], "niveau": "expert"}], disponibilite="conge")
    await deliver(
        event("started"), intervention_data(next(_ids), "en_cours", equipement_id=eid, technicien_id=expert_busy.id)
    )
    for _ in range(2):
        await deliver(
            event("created"),
            intervention_data(next(_ids), "affectee", equipement_id=1, technicien_id=expert_free_loaded.id),
        )
    # The novice has worked on this equipment before: it breaks ties, never beats a competence.
    await deliver(
        event("closed"), intervention_data(next(_ids), "cloturee", equipement_id=eid, technicien_id=novice.id)
    )

    response = await client.get(
        "/api/v1/techniciens/recommandation",
        params={"equipement_id": eid, "competence": "hydraulique", "limit": 100},
        headers=manager,
    )
    assert response.status_code == 200, response.text
    ranked = [
        r
        for r in response.json()
        if r["technicien"]["id"]
        in {t.id for t in (expert_busy, expert_free_loaded, expert_free, debutant, novice, on_leave)}
    ]
    assert [r["technicien"]["id"] for r in ranked] == [
        expert_free.id,
        expert_free_loaded.id,
        expert_busy.id,
        debutant.id,
        novice.id,
    ]
    assert [(r["niveau"], r["charge_travail"]) for r in ranked] == [
        ("expert", 0),
        ("expert", 2),
        ("expert", 1),
        ("debutant", 0),
        (None, 0),
    ]
    assert ranked[-1]["interventions_sur_equipement"] == 1
    assert ranked[0]["rang"] < ranked[1]["rang"]
    by_id = await client.get(
        "/api/v1/techniciens/recommandation", params={"competence": str(hydraulique["id"])}, headers=manager
    )
    assert by_id.status_code == 200 and by_id.json()[0]["niveau"] == "expert"


@pytest.mark.parametrize("match", ["nom", "domaine"])
async def test_an_equipment_brings_the_competence_of_its_type(
    client: httpx.AsyncClient,
    manager: Headers,
    make_technicien: MakeTech,
    make_competence: Make,
    known_equipement: Callable[..., Any],
    match: str,
) -> None:
    kind = f"Chaudière {next(_ids)}"
    fitting = await make_competence(
        **({"nom": kind} if match == "nom" else {"nom": f"Brûleurs {kind}", "domaine": kind})
    )
    other = await make_competence(nom=f"Froid {next(_ids)}")
    eid = await known_equipement(type=kind.upper())  # the type is a free label: case does not matter
    specialist = await make_technicien(competences=[{"id": fitting["id"], "niveau": "avance"}])
    await make_technicien(competences=[{"id": other["id"], "niveau": "expert"}])

    response = await client.get(
        "/api/v1/techniciens/recommandation", params={"equipement_id": eid, "limit": 1}, headers=manager
    )
    assert response.status_code == 200, response.text
    [best] = response.json()
    assert best["technicien"]["id"] == specialist.id
    assert (best["competence"]["id"], best["niveau"]) == (fitting["id"], "avance")
    untyped = await known_equipement(type=f"inconnu {next(_ids)}")
    plain = await client.get(
        "/api/v1/techniciens/recommandation", params={"equipement_id": untyped, "limit": 1}, headers=manager
    )
    assert plain.status_code == 200 and plain.json()[0]["competence"] is None


async def test_recommendation_needs_a_known_competence(client: httpx.AsyncClient, manager: Headers) -> None:
    response = await client.get(
        "/api/v1/techniciens/recommandation", params={"competence": "télépathie"}, headers=manager
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "competence", "message": "unknown competence"}]
