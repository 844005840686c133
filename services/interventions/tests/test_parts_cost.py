"""The parts cost inventory reports (`inventory.intervention.parts_costed.v1`), through the real consumer
path: stored when its version is newer, shown as `cout_pieces` and, without a user's figure, as
`cout_reel`; one `pieces` history row per cost applied; the dashboard's `cout_pieces_total`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_interventions.models import Intervention
from mif_interventions.replicas import montant
from mif_interventions.testing import Deliver, World, new_id

PARTS_COSTED = "inventory.intervention.parts_costed.v1"


def ligne(piece_id: int, quantite: str, cout: int) -> dict[str, Any]:
    return {
        "piece_id": piece_id,
        "reference": f"REF-{piece_id}",
        "nom": "Joint",
        "unite": "u",
        "quantite": quantite,
        "cout": cout,
    }


def parts_costed(intervention_id: int, cout: int, version: int, *, lignes: int = 1, **extra: Any) -> dict[str, Any]:
    """`data` of `inventory.intervention.parts_costed.v1` as inventory's contract gives it (inventory's own
    example helper does not exist yet)."""
    return {
        "intervention_id": intervention_id,
        "cout_pieces": cout,
        "lignes": [ligne(n + 1, "2.5", cout // max(lignes, 1)) for n in range(lignes)],
        "version": version,
        "actor_id": 4242,
        "occurred_at": datetime.now(UTC).isoformat(),
    } | extra


async def read(client: httpx.AsyncClient, world: World, intervention_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/interventions/{intervention_id}", headers=world.manager)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def pieces_history(client: httpx.AsyncClient, world: World, intervention_id: int) -> list[dict[str, Any]]:
    history = await client.get(f"/api/v1/interventions/{intervention_id}/historique", headers=world.manager)
    return [h for h in history.json() if h["action"] == "pieces"]


def test_amounts_are_written_the_french_way() -> None:
    assert montant(123450) == "1\u00a0234,50 MAD"
    assert montant(5) == "0,05 MAD"
    assert montant(0) == "0,00 MAD"
    assert montant(100_000_000) == "1\u00a0000\u00a0000,00 MAD"


async def test_a_parts_cost_is_stored_shown_and_kept_in_the_history(
    world: World, deliver: Deliver, client: httpx.AsyncClient
) -> None:
    created = await world.intervention()
    iid = created["id"]
    assert created["cout_pieces"] is None and created["cout_reel"] is None
    assert await deliver(PARTS_COSTED, parts_costed(iid, 123450, 1, lignes=2))

    shown = await read(client, world, iid)
    assert shown["cout_pieces"] == 123450
    assert shown["cout_reel"] == 123450  # no figure from a user: the parts are the real cost known
    assert shown["version"] == created["version"]  # inventory's figure is not an edit: the ETag stays
    listed = await client.get(
        "/api/v1/interventions", params={"equipement_id": created["equipement_id"]}, headers=world.manager
    )
    [row] = listed.json()
    assert row["cout_pieces"] == 123450 and row["cout_reel"] == 123450 and "cout_pieces_version" not in row

    [entry] = await pieces_history(client, world, iid)
    assert entry["remarque"] == "Coût des pièces : 1\u00a0234,50 MAD (2 lignes)"
    assert entry["avant"] == {"cout_pieces": None} and entry["apres"] == {"cout_pieces": 123450}
    assert entry["user_id"] == 4242 and entry["statut"] == "ouverte"


async def test_an_older_or_equal_version_changes_nothing(
    world: World, deliver: Deliver, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    iid = (await world.intervention())["id"]
    assert await deliver(PARTS_COSTED, parts_costed(iid, 5000, 2))
    assert await deliver(PARTS_COSTED, parts_costed(iid, 9999, 1))  # arrives late: older
    assert await deliver(PARTS_COSTED, parts_costed(iid, 7777, 2))  # same version, another event id
    stored = (
        await db_session.execute(
            text("SELECT cout_pieces, cout_pieces_version FROM intervention WHERE id = :i"), {"i": iid}
        )
    ).one()
    assert tuple(stored) == (5000, 2)
    assert len(await pieces_history(client, world, iid)) == 1

    # Everything returned: a newer version at 0, no line left.
    assert await deliver(PARTS_COSTED, parts_costed(iid, 0, 3, lignes=0))
    assert (await read(client, world, iid))["cout_pieces"] == 0
    first, last = await pieces_history(client, world, iid)
    assert last["remarque"] == "Coût des pièces : 0,00 MAD (aucune ligne)"
    assert last["avant"] == {"cout_pieces": 5000} and last["apres"] == {"cout_pieces": 0}
    assert first["apres"] == {"cout_pieces": 5000}


async def test_the_same_event_delivered_twice_is_applied_once(
    world: World, deliver: Deliver, client: httpx.AsyncClient
) -> None:
    iid = (await world.intervention())["id"]
    event_id = str(uuid.uuid4())
    data = parts_costed(iid, 250, 1)
    assert await deliver(PARTS_COSTED, data, event_id=event_id) is True
    assert await deliver(PARTS_COSTED, data, event_id=event_id) is False
    [entry] = await pieces_history(client, world, iid)
    assert entry["remarque"] == "Coût des pièces : 2,50 MAD (1 ligne)"


async def test_an_unknown_intervention_is_skipped_not_failed(
    deliver: Deliver, db_session: AsyncSession, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = new_id()
    event_id = str(uuid.uuid4())
    assert await deliver(PARTS_COSTED, parts_costed(unknown, 1000, 1), event_id=event_id)
    assert f"unknown intervention {unknown}" in caplog.text
    # Handled (no retry would change it): the inbox has it, nothing else was written.
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": event_id}) == 1
    assert await db_session.scalar(text("SELECT count(*) FROM intervention WHERE id = :i"), {"i": unknown}) == 0


@pytest.mark.parametrize(
    "data",
    [
        {"intervention_id": 1, "cout_pieces": -1, "version": 1, "occurred_at": "2026-03-01T08:00:00Z"},
        {"intervention_id": 1, "cout_pieces": 10, "version": 0, "occurred_at": "2026-03-01T08:00:00Z"},
        {"intervention_id": 1, "cout_pieces": 10, "version": 1, "occurred_at": "2026-03-01T08:00:00"},  # no zone
    ],
)
async def test_a_malformed_parts_cost_is_permanent_and_writes_nothing(
    deliver: Deliver, db_session: AsyncSession, data: dict[str, Any]
) -> None:
    event_id = str(uuid.uuid4())
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver(PARTS_COSTED, data, event_id=event_id)
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :e"), {"e": event_id}) == 0


async def test_cout_reel_is_the_users_figure_when_given_else_the_parts_cost(
    world: World, deliver: Deliver, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    iid = (await world.intervention())["id"]
    url = f"/api/v1/interventions/{iid}"
    await deliver(PARTS_COSTED, parts_costed(iid, 80000, 1))

    given = await client.patch(url, json={"cout_reel": 150000}, headers=world.manager)
    assert given.status_code == 200
    assert given.json()["cout_reel"] == 150000 and given.json()["cout_pieces"] == 80000
    # A later parts cost does not override the user's figure.
    await deliver(PARTS_COSTED, parts_costed(iid, 90000, 2))
    assert (await read(client, world, iid))["cout_reel"] == 150000

    cleared = await client.patch(url, json={"cout_reel": None}, headers=world.manager)
    assert cleared.json()["cout_reel"] == 90000 and cleared.json()["cout_pieces"] == 90000
    # Only the answer shows the parts cost: the stored figure stays what the user left (none).
    stored = await db_session.scalar(text("SELECT cout_reel FROM intervention WHERE id = :i"), {"i": iid})
    assert stored is None


async def test_closing_keeps_the_parts_cost_and_a_return_after_closing_still_counts(
    world: World, deliver: Deliver, client: httpx.AsyncClient
) -> None:
    tech = await world.technicien()
    iid = (await world.intervention(technicien_id=tech.id))["id"]
    await deliver(PARTS_COSTED, parts_costed(iid, 30000, 1))
    assert (await world.act(iid, "demarrer", tech.headers)).status_code == 200
    closed = await world.act(iid, "cloturer", tech.headers)
    assert closed.status_code == 200 and closed.json()["cout_reel"] == 30000
    await deliver(PARTS_COSTED, parts_costed(iid, 20000, 2))  # a part returned after the closing
    shown = await read(client, world, iid)
    assert shown["cout_pieces"] == 20000 and shown["statut"] == "cloturee"
    assert (await pieces_history(client, world, iid))[-1]["statut"] == "cloturee"


# --- the dashboard ---------------------------------------------------------------------------------------


async def test_kpis_total_the_parts_cost_of_what_closed_in_the_period_and_the_caller_sees(
    client: httpx.AsyncClient, world: World, db_session: AsyncSession
) -> None:
    org_a, org_b = new_id(), new_id()
    eq_a, eq_b = await world.equipement(client_id=org_a), await world.equipement(client_id=org_b)
    now = datetime.now(UTC)
    day = timedelta(days=1)

    def row(eq: int, org: int, cout: int | None, **fields: Any) -> dict[str, Any]:
        base = {"titre": "x", "type": "corrective", "equipement_id": eq, "client_id": org, "version": 1}
        base |= {"cout_pieces": cout, "date_creation": now - 10 * day, "date_modification": now - 10 * day}
        return base | fields

    closed_recently = {"statut": "cloturee", "date_debut_travaux": now - 3 * day, "date_cloture": now - 2 * day}
    await db_session.execute(
        sa.insert(Intervention),
        [
            row(eq_a, org_a, 12000, **closed_recently),
            row(eq_a, org_a, 3050, **closed_recently),
            row(eq_a, org_a, None, **closed_recently),  # no parts: counts 0
            row(eq_a, org_a, 70000, statut="en_cours"),  # not closed: not counted
            row(eq_a, org_a, 40000, statut="cloturee", date_debut_travaux=now - 90 * day, date_cloture=now - 80 * day),
            row(eq_b, org_b, 500000, **closed_recently),  # another organisation
        ],
    )
    as_a = (await client.get("/api/v1/dashboard/kpis", headers=world.client_user(org_a))).json()
    assert as_a["cout_pieces_total"] == 15050
    as_b = (await client.get("/api/v1/dashboard/kpis", headers=world.client_user(org_b))).json()
    assert as_b["cout_pieces_total"] == 500000
    nobody = (await client.get("/api/v1/dashboard/kpis", headers=world.client_user(new_id()))).json()
    assert nobody["cout_pieces_total"] == 0
    older = await client.get(
        "/api/v1/dashboard/kpis",
        params={"du": (now - 100 * day).isoformat(), "au": (now - 50 * day).isoformat()},
        headers=world.client_user(org_a),
    )
    assert older.json()["cout_pieces_total"] == 40000
    # A manager sees both organisations (and whatever other tests left: at least these).
    as_manager = (await client.get("/api/v1/dashboard/kpis", headers=world.manager)).json()
    assert as_manager["cout_pieces_total"] >= 515050
    assert list(as_manager)[-1] == "cout_pieces_total"  # added after the existing keys
