"""Who may upload and read which documents (DOMAIN.md §1), decided from the replicas fed by events
(through the real consumer path), with one read-through to a real HTTP stand-in for interventions
when the replica cannot decide."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.config import ServiceSettings
from mif_common.testing.processes import free_port
from mif_documents.handlers import HANDLERS
from mif_documents.testing import (
    CLIENT_A,
    CLIENT_B,
    OTHER_TECH_ID,
    TECH_ID,
    TECH_USER_ID,
    Deliver,
    Headers,
    Known,
    StandIn,
    Upload,
    png_bytes,
)
from mif_interventions.testing import intervention_data
from mif_planning.testing import technicien_data

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def not_visible(intervention_id: int) -> str:
    return f"Intervention {intervention_id} does not exist or is not visible to you."


@pytest.fixture
def asked(standin: StandIn) -> Iterator[list[tuple[int, str | None]]]:
    """What the stand-in was asked during this test."""
    standin.asked.clear()
    yield standin.asked
    standin.decide = None


def test_every_consumed_type_has_a_handler(mif_settings: ServiceSettings) -> None:
    # Only the facts that can change who sees the documents or whether they take uploads (not the work's
    # progress: started, paused, resumed, late, closed, cancelled).
    verbs = ["created", "assigned", "unassigned", "archived", "updated", "deleted"]
    expected = {f"interventions.intervention.{v}.v1" for v in verbs}
    expected |= {f"planning.technicien.{v}.v1" for v in ("created", "updated", "deleted")}
    assert set(HANDLERS) == expected


@pytest.mark.usefixtures("technicians")
async def test_row_rules_for_every_role(
    client: httpx.AsyncClient,
    upload: Upload,
    known_intervention: Known,
    admin: Headers,
    manager: Headers,
    technicien: Headers,
    other_technicien: Headers,
    client_user: Callable[[int], Headers],
    asked: list[Any],
) -> None:
    intervention_id = await known_intervention(statut="affectee", client_id=CLIENT_A, technicien_id=TECH_ID)
    allowed = {
        "admin": admin,
        "manager": manager,
        "assigned technician": technicien,
        "client A": client_user(CLIENT_A),
    }
    refused = {"other technician": other_technicien, "client B": client_user(CLIENT_B)}
    for who, headers in allowed.items():
        response = await upload(intervention_id, headers, png_bytes(), filename=f"{who}.png")
        assert response.status_code == 201, (who, response.text)
        listed = await client.get(f"/api/v1/documents/{intervention_id}", headers=headers)
        assert listed.status_code == 200, who
        metadata = await client.get(f"/api/v1/documents/fichier/{response.json()['id']}", headers=headers)
        assert metadata.status_code == 200, who
    document_id = response.json()["id"]
    for who, headers in refused.items():
        response = await upload(intervention_id, headers, png_bytes())
        assert response.status_code == 404, who
        assert response.json()["detail"] == not_visible(intervention_id)
        listed = await client.get(f"/api/v1/documents/{intervention_id}", headers=headers)
        assert listed.status_code == 404 and listed.json()["detail"] == not_visible(intervention_id)
        metadata = await client.get(f"/api/v1/documents/fichier/{document_id}", headers=headers)
        assert metadata.status_code == 404
        assert metadata.json()["detail"] == f"Document {document_id} does not exist or is not visible to you."
    everything = await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)
    assert len(everything.json()) == 4 and everything.headers["x-total-count"] == "4"
    assert asked == []  # the replica decided everything


@pytest.mark.usefixtures("technicians")
async def test_the_global_list_applies_the_row_rules(
    client: httpx.AsyncClient,
    upload: Upload,
    known_intervention: Known,
    manager: Headers,
    technicien: Headers,
    other_technicien: Headers,
    client_user: Callable[[int], Headers],
) -> None:
    mine = await known_intervention(statut="affectee", client_id=CLIENT_A, technicien_id=TECH_ID)
    theirs = await known_intervention(statut="affectee", client_id=CLIENT_B, technicien_id=OTHER_TECH_ID)
    unassigned = await known_intervention(client_id=CLIENT_A)
    ids = {}
    for intervention_id in (mine, theirs, unassigned):
        response = await upload(intervention_id, manager, png_bytes(), fields={"categorie": "photo"})
        ids[intervention_id] = response.json()["id"]

    async def seen(headers: Headers, **params: Any) -> list[int]:
        response = await client.get("/api/v1/documents", headers=headers, params=params)
        assert response.status_code == 200
        return sorted(d["intervention_id"] for d in response.json())

    assert await seen(manager) == sorted([mine, theirs, unassigned])
    assert await seen(technicien) == [mine]
    assert await seen(other_technicien) == [theirs]
    assert await seen(client_user(CLIENT_A)) == sorted([mine, unassigned])
    assert await seen(client_user(CLIENT_B)) == [theirs]
    assert await seen(client_user(99)) == []
    assert await seen(manager, intervention_id=theirs) == [theirs]
    assert await seen(manager, categorie="rapport") == []
    assert await seen(manager, sort="-id", limit=1) == [unassigned]


async def test_a_client_account_without_organisation_is_refused(
    client: httpx.AsyncClient, auth_headers: Callable[..., Headers], known_intervention: Known
) -> None:
    headers = auth_headers("client", user_id=3000)
    assert (await client.get("/api/v1/documents", headers=headers)).status_code == 403
    intervention_id = await known_intervention(client_id=CLIENT_A)
    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=headers)).status_code == 403


async def test_a_replica_miss_asks_interventions_once_as_the_caller_and_caches_the_answer(
    client: httpx.AsyncClient,
    upload: Upload,
    manager: Headers,
    client_user: Callable[[int], Headers],
    standin: StandIn,
    asked: list[tuple[int, str | None]],
    new_id: Callable[[], int],
    db_session: AsyncSession,
) -> None:
    intervention_id = new_id()
    standin.answer(intervention_id, statut="en_cours", client_id=CLIENT_A, technicien_id=TECH_ID)
    caller = client_user(CLIENT_A)
    response = await upload(intervention_id, caller, png_bytes())
    assert response.status_code == 201, response.text
    assert asked == [(intervention_id, caller["Authorization"])]
    cached = (
        await db_session.execute(
            text("SELECT client_id, technicien_id, statut FROM intervention_ref WHERE intervention_id = :i"),
            {"i": intervention_id},
        )
    ).one()
    assert tuple(cached) == (CLIENT_A, TECH_ID, "en_cours")
    assert (await upload(intervention_id, caller, png_bytes())).status_code == 201
    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)).status_code == 200
    assert len(asked) == 1  # answered from the replica since


async def test_interventions_saying_not_found_is_the_same_404(
    client: httpx.AsyncClient,
    upload: Upload,
    technicien: Headers,
    asked: list[tuple[int, str | None]],
    new_id: Callable[[], int],
) -> None:
    intervention_id = new_id()  # the stand-in does not know it: 404, as for one the caller may not see
    response = await upload(intervention_id, technicien, png_bytes())
    assert response.status_code == 404
    assert response.json()["detail"] == not_visible(intervention_id)
    assert asked == [(intervention_id, technicien["Authorization"])]
    listed = await client.get(f"/api/v1/documents/{intervention_id}", headers=technicien)
    assert listed.status_code == 404 and listed.json()["detail"] == not_visible(intervention_id)


@pytest.mark.parametrize("status", [500, 502, 401, 403])
async def test_what_interventions_answers_besides_200_and_404(
    upload: Upload, manager: Headers, standin: StandIn, new_id: Callable[[], int], asked: list[Any], status: int
) -> None:
    intervention_id = new_id()
    standin.answer(intervention_id, status=status)
    response = await upload(intervention_id, manager, png_bytes())
    if status >= 500:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "interventions service did not answer" in response.json()["detail"]
    else:  # the owner refuses the caller: not visible
        assert response.status_code == 404


async def test_interventions_unreachable_is_503(
    upload: Upload,
    manager: Headers,
    mif_settings: ServiceSettings,
    monkeypatch: pytest.MonkeyPatch,
    new_id: Callable[[], int],
) -> None:
    monkeypatch.setattr(mif_settings, "interventions_url", f"http://127.0.0.1:{free_port()}")
    response = await upload(new_id(), manager, png_bytes())
    assert response.status_code == 503
    assert response.json()["type"].endswith("/interventions-unavailable")


async def test_an_unknown_technician_mapping_asks_interventions(
    upload: Upload,
    known_intervention: Known,
    technicien: Headers,
    standin: StandIn,
    asked: list[tuple[int, str | None]],
) -> None:
    """planning has not published technician 777 yet: the owner decides for the caller."""
    visible = await known_intervention(statut="affectee", technicien_id=777)
    hidden = await known_intervention(statut="affectee", technicien_id=778)
    standin.answer(visible, statut="affectee", technicien_id=777)
    assert (await upload(visible, technicien, png_bytes())).status_code == 201
    assert (await upload(hidden, technicien, png_bytes())).status_code == 404
    assert [i for i, _ in asked] == [visible, hidden]


@pytest.mark.usefixtures("technicians")
async def test_events_keep_the_replica_current_and_older_facts_are_ignored(
    client: httpx.AsyncClient,
    upload: Upload,
    deliver: Deliver,
    known_intervention: Known,
    manager: Headers,
    technicien: Headers,
    other_technicien: Headers,
) -> None:
    intervention_id = await known_intervention(occurred_at=at(0))
    assert (await upload(intervention_id, technicien, png_bytes())).status_code == 404
    assigned = intervention_data(intervention_id, statut="affectee", technicien_id=TECH_ID, occurred_at=at(2))
    await deliver("interventions.intervention.assigned.v1", assigned)
    assert (await upload(intervention_id, technicien, png_bytes())).status_code == 201
    # Reassigned (later fact), then the older "unassigned" arrives late: it changes nothing.
    reassigned = intervention_data(intervention_id, statut="affectee", technicien_id=OTHER_TECH_ID, occurred_at=at(5))
    await deliver("interventions.intervention.assigned.v1", reassigned)
    late = intervention_data(intervention_id, statut="ouverte", technicien_id=None, occurred_at=at(3))
    await deliver("interventions.intervention.unassigned.v1", late)
    assert (await upload(intervention_id, technicien, png_bytes())).status_code == 404
    assert (await upload(intervention_id, other_technicien, png_bytes())).status_code == 201
    # The technician still cannot see the document they uploaded before the reassignment.
    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=technicien)).status_code == 404
    assert len((await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)).json()) == 2


async def test_technician_snapshots_keep_the_newest_version(
    upload: Upload, deliver: Deliver, known_intervention: Known, technicien: Headers, other_technicien: Headers
) -> None:
    intervention_id = await known_intervention(statut="affectee", technicien_id=900)
    await deliver("planning.technicien.updated.v1", technicien_data(900, TECH_USER_ID, version=3))
    assert await deliver("planning.technicien.created.v1", technicien_data(900, 4242, version=1))
    assert (await upload(intervention_id, technicien, png_bytes())).status_code == 201
    assert (await upload(intervention_id, other_technicien, png_bytes())).status_code == 404


async def test_a_duplicate_delivery_is_skipped(deliver: Deliver, new_id: Callable[[], int]) -> None:
    data = intervention_data(new_id())
    assert await deliver("interventions.intervention.created.v1", data, event_id="dup-1") is True
    assert await deliver("interventions.intervention.created.v1", data, event_id="dup-1") is False


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("interventions.intervention.created.v1", {"intervention_id": 1}),
        ("interventions.intervention.created.v1", intervention_data(5, statut="en_panne")),
        (
            "interventions.intervention.created.v1",
            intervention_data(5) | {"occurred_at": "2026-03-01T08:00:00"},  # no time zone
        ),
        ("interventions.intervention.created.v1", intervention_data(0)),
        ("interventions.intervention.deleted.v1", {"intervention_id": 5}),
        ("planning.technicien.created.v1", {"technicien_id": 5, "user_id": None, "version": 1}),
    ],
)
async def test_a_malformed_event_is_permanent_and_writes_nothing(
    deliver: Deliver, db_session: AsyncSession, event_type: str, data: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver(event_type, data, event_id="bad-event")
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = 'bad-event'")) == 0
