"""Preventive plans through the HTTP API: the contract rows of DOMAIN.md §8 and the rules of §5."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mif_assets.testing import equipement_data
from mif_planning.testing import Deliver, Headers, Make, MakeTech

# Dates of plans made here lie next year: a plan's next date may not be more than one interval ago.
Y = datetime.now(UTC).year + 1


async def test_a_manager_creates_a_plan(
    client: httpx.AsyncClient, manager: Headers, known_equipement: Callable[..., Any], make_technicien: MakeTech
) -> None:
    eid = await known_equipement(nom="Compresseur Atlas")
    tech = await make_technicien()
    body = {
        "equipement_id": eid,
        "frequence": "Mensuelle",
        "prochaine_date": f"{Y}-03-01T08:00:00+01:00",
        "commentaire": "Vidange et filtres",
        "technicien_id": tech.id,
    }
    response = await client.post("/api/v1/planning/", json=body, headers=manager)
    assert response.status_code == 201, response.text
    plan = response.json()
    assert response.headers["location"] == f"/api/v1/planning/{plan['id']}"
    assert plan["frequence"] == "mensuel" and plan["frequence_jours"] == 30
    assert plan["prochaine_date"] == f"{Y}-03-01T07:00:00Z"
    assert plan["derniere_date"] is None and plan["statut"] == "actif"
    assert plan["equipement"] == {"id": eid, "nom": "Compresseur Atlas"}
    assert plan["technicien_id"] == tech.id
    assert plan["technicien"] == {"id": tech.id, "full_name": tech.body["user"]["full_name"], "is_active": True}
    assert plan["commentaire"] == "Vidange et filtres"
    assert (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json() == plan


@pytest.mark.parametrize(
    ("sent", "canonical", "days"),
    [
        ("daily", "journalier", 1),
        ("journaliere", "journalier", 1),
        ("weekly", "hebdomadaire", 7),
        ("monthly", "mensuel", 30),
        ("quarterly", "trimestriel", 90),
        ("trimestrielle", "trimestriel", 90),
        ("semiannual", "semestriel", 182),
        ("biannual", "semestriel", 182),
        ("semestrielle", "semestriel", 182),
        ("yearly", "annuel", 365),
        ("Annuelle", "annuel", 365),
    ],
)
async def test_every_frequency_spelling_is_answered_canonically(
    make_plan: Make, sent: str, canonical: str, days: int
) -> None:
    plan = await make_plan(frequence=sent, prochaine_date=f"{Y}-06-01")
    assert (plan["frequence"], plan["frequence_jours"]) == (canonical, days)


async def test_an_unknown_frequency_lists_the_accepted_values(
    client: httpx.AsyncClient, manager: Headers, known_equipement: Callable[..., Any]
) -> None:
    body = {"equipement_id": await known_equipement(), "frequence": "biennal"}
    response = await client.post("/api/v1/planning", json=body, headers=manager)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "frequence"
    assert error["message"].startswith("Unknown frequency 'biennal'. Accepted values: journalier (journaliere")
    assert "yearly" in error["message"]


async def test_the_first_date_defaults_to_one_interval_from_now(make_plan: Make) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    plan = await make_plan(frequence="hebdomadaire")
    due = datetime.fromisoformat(plan["prochaine_date"])
    assert before + timedelta(days=7) <= due <= datetime.now(UTC) + timedelta(days=7)


async def test_a_plan_needs_a_known_equipment_and_an_active_technician(
    client: httpx.AsyncClient, manager: Headers, known_equipement: Callable[..., Any], make_technicien: MakeTech
) -> None:
    # No assets service answers in these tests (see test_read_through.py for the question to assets).
    unknown = await client.post(
        "/api/v1/planning", json={"equipement_id": 424242, "frequence": "mensuel"}, headers=manager
    )
    assert unknown.status_code == 503
    retired = await known_equipement(statut="retire", nom="Vieux four")
    response = await client.post(
        "/api/v1/planning", json={"equipement_id": retired, "frequence": "annuel"}, headers=manager
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"The equipment 'Vieux four' (id {retired}) is retired; it needs no preventive plan."
    )
    tech = await make_technicien()
    await client.delete(f"/api/v1/techniciens/{tech.id}", headers=manager)
    for technicien_id in (tech.id, 99999):
        body = {"equipement_id": await known_equipement(), "frequence": "annuel", "technicien_id": technicien_id}
        response = await client.post("/api/v1/planning", json=body, headers=manager)
        assert response.status_code == 422
        assert response.json()["detail"] == f"No active technician with id {technicien_id}."


async def test_a_deleted_equipment_is_unknown(
    client: httpx.AsyncClient, manager: Headers, known_equipement: Callable[..., Any], deliver: Deliver
) -> None:
    eid = await known_equipement()
    await deliver("assets.equipement.deleted.v1", equipement_data(eid, version=2))
    response = await client.post(
        "/api/v1/planning", json={"equipement_id": eid, "frequence": "annuel"}, headers=manager
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "equipement_id", "message": "unknown equipment"}]


async def test_put_is_a_partial_update(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, make_technicien: MakeTech
) -> None:
    tech = await make_technicien()
    plan = await make_plan(frequence="mensuel", prochaine_date=f"{Y}-05-01T08:00:00Z", commentaire="x")
    body = {"frequence": "quarterly", "statut": "suspendu", "technicien_id": tech.id, "commentaire": None}
    response = await client.put(f"/api/v1/planning/{plan['id']}", json=body, headers=manager)
    assert response.status_code == 200, response.text
    got = response.json()
    assert (got["frequence"], got["statut"], got["technicien_id"], got["commentaire"]) == (
        "trimestriel",
        "suspendu",
        tech.id,
        None,
    )
    assert got["prochaine_date"] == plan["prochaine_date"] and got["derniere_date"] is None
    unassigned = await client.put(f"/api/v1/planning/{plan['id']}", json={"technicien_id": None}, headers=manager)
    assert unassigned.json()["technicien"] is None
    refused = await client.put(f"/api/v1/planning/{plan['id']}", json={"statut": None}, headers=manager)
    assert refused.status_code == 422


async def test_manual_redating_moves_the_old_date_into_derniere_date(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make
) -> None:
    plan = await make_plan(prochaine_date=f"{Y}-05-01T08:00:00Z")
    response = await client.patch(
        f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": f"{Y}-05-10T09:30:00+00:00"}, headers=manager
    )
    assert response.status_code == 200, response.text
    assert response.json()["derniere_date"] == f"{Y}-05-01T08:00:00Z"
    assert response.json()["prochaine_date"] == f"{Y}-05-10T09:30:00Z"
    date_only = await client.patch(
        f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": f"{Y}-06-01"}, headers=manager
    )
    assert date_only.json()["derniere_date"] == f"{Y}-05-10T09:30:00Z"
    assert date_only.json()["prochaine_date"] == f"{Y}-06-01T00:00:00Z"
    for bad in ({}, {"nouvelle_date": "demain"}):
        assert (
            await client.patch(f"/api/v1/planning/{plan['id']}/dates", params=bad, headers=manager)
        ).status_code == 422


async def test_delete_and_not_found(client: httpx.AsyncClient, manager: Headers, make_plan: Make) -> None:
    plan = await make_plan()
    assert (await client.delete(f"/api/v1/planning/{plan['id']}", headers=manager)).status_code == 204
    for method in ("GET", "PUT", "DELETE"):
        missing = await client.request(
            method, f"/api/v1/planning/{plan['id']}", headers=manager, json={} if method == "PUT" else None
        )
        assert missing.status_code == 404
        assert missing.json()["detail"] == f"No preventive plan with id {plan['id']}."
    missing = await client.patch(
        f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": f"{Y}-01-01"}, headers=manager
    )
    assert missing.status_code == 404


async def test_a_technician_sees_only_its_plans(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, make_technicien: MakeTech
) -> None:
    me, other = await make_technicien(), await make_technicien()
    mine = await make_plan(technicien_id=me.id)
    theirs = await make_plan(technicien_id=other.id)
    unassigned = await make_plan()
    listing = await client.get("/api/v1/planning", headers=me.headers)
    assert [p["id"] for p in listing.json()] == [mine["id"]]
    assert (await client.get(f"/api/v1/planning/{mine['id']}", headers=me.headers)).status_code == 200
    for hidden in (theirs, unassigned):
        assert (await client.get(f"/api/v1/planning/{hidden['id']}", headers=me.headers)).status_code == 404
    everything = await client.get("/api/v1/planning", headers=manager, params={"limit": 500})
    assert {mine["id"], theirs["id"], unassigned["id"]} <= {p["id"] for p in everything.json()}


async def test_list_filters_and_sorts(client: httpx.AsyncClient, manager: Headers, make_plan: Make) -> None:
    eid = (await make_plan(frequence="annuel", prochaine_date=f"{Y}-09-01"))["equipement_id"]
    weekly = await make_plan(equipement_id=eid, frequence="weekly", prochaine_date=f"{Y}-08-01")
    suspended = await make_plan(equipement_id=eid, frequence="daily", statut="suspendu", prochaine_date=f"{Y}-07-01")
    by_freq = await client.get(
        "/api/v1/planning", headers=manager, params={"equipement_id": eid, "frequence": "Hebdo madaire"}
    )
    assert [p["id"] for p in by_freq.json()] == [weekly["id"]]
    by_statut = await client.get(
        "/api/v1/planning", headers=manager, params={"equipement_id": eid, "statut": "suspendu"}
    )
    assert [p["id"] for p in by_statut.json()] == [suspended["id"]]
    ordered = await client.get("/api/v1/planning", headers=manager, params={"equipement_id": eid, "sort": "frequence"})
    assert [p["frequence"] for p in ordered.json()] == ["journalier", "hebdomadaire", "annuel"]
    by_date = await client.get(
        "/api/v1/planning", headers=manager, params={"equipement_id": eid, "sort": "-prochaine_date"}
    )
    assert [p["prochaine_date"][:10] for p in by_date.json()] == [f"{Y}-09-01", f"{Y}-08-01", f"{Y}-07-01"]
    assert (await client.get("/api/v1/planning", headers=manager, params={"frequence": "x"})).status_code == 422
    assert (await client.get("/api/v1/planning", headers=manager, params={"sort": "nope"})).status_code == 422


async def test_a_retired_or_deleted_equipment_ends_its_plans(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, deliver: Deliver
) -> None:
    plan = await make_plan()
    suspended = await make_plan(equipement_id=plan["equipement_id"], statut="suspendu")
    eid = plan["equipement_id"]
    await deliver("assets.equipement.retired.v1", equipement_data(eid, statut="retire", version=5))
    for made in (plan, suspended):
        assert (await client.get(f"/api/v1/planning/{made['id']}", headers=manager)).json()["statut"] == "termine"
    # An older snapshot arriving late changes nothing.
    await deliver(
        "assets.equipement.updated.v1",
        equipement_data(eid, nom="Ancien", version=4, updated_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat()),
    )
    assert (await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)).json()["equipement"]["nom"] != "Ancien"


# --- a next date in the past, and the plan's history ----------------------------------------------


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def refused_with_earliest_date(response: httpx.Response, field: str, *, now: datetime, days: int) -> str:
    """A 422 problem whose sentence gives the earliest date accepted (about one interval before `now`)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    earliest = problem["earliest_date"]
    assert f"the earliest date accepted is {earliest}." in problem["detail"]
    assert problem["errors"] == [{"field": field, "message": f"earlier than {earliest}, the earliest date accepted"}]
    one_interval_ago = now - timedelta(days=days)
    assert one_interval_ago - timedelta(minutes=6) <= datetime.fromisoformat(earliest) <= one_interval_ago
    return str(earliest)


@pytest.mark.parametrize(("frequence", "days"), [("journalier", 1), ("hebdomadaire", 7), ("annuel", 365)])
async def test_a_next_date_two_intervals_ago_is_refused_one_interval_ago_accepted(
    client: httpx.AsyncClient,
    manager: Headers,
    make_plan: Make,
    known_equipement: Callable[..., Any],
    frequence: str,
    days: int,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    step = timedelta(days=days)
    two_back, one_back = iso(now - 2 * step), iso(now - step)
    eid = await known_equipement()

    created = await client.post(
        "/api/v1/planning",
        json={"equipement_id": eid, "frequence": frequence, "prochaine_date": two_back},
        headers=manager,
    )
    earliest = refused_with_earliest_date(created, "prochaine_date", now=now, days=days)
    assert (
        f"The next due date {two_back} is more than one interval of the frequency '{frequence}'"
        in (created.json()["detail"])
    )
    plan = await make_plan(equipement_id=eid, frequence=frequence, prochaine_date=one_back)
    assert plan["prochaine_date"] == one_back
    # The date the refusal named is accepted too.
    assert (await make_plan(equipement_id=eid, frequence=frequence, prochaine_date=earliest))[
        "prochaine_date"
    ] == earliest

    put = await client.put(f"/api/v1/planning/{plan['id']}", json={"prochaine_date": two_back}, headers=manager)
    refused_with_earliest_date(put, "prochaine_date", now=now, days=days)
    patched = await client.patch(
        f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": two_back}, headers=manager
    )
    refused_with_earliest_date(patched, "nouvelle_date", now=now, days=days)
    unchanged = await client.get(f"/api/v1/planning/{plan['id']}", headers=manager)
    assert unchanged.json()["prochaine_date"] == one_back and unchanged.json()["derniere_date"] is None

    # One interval back is accepted by PUT and PATCH as well.
    ok = await client.put(f"/api/v1/planning/{plan['id']}", json={"prochaine_date": one_back}, headers=manager)
    assert ok.status_code == 200, ok.text
    ok = await client.patch(f"/api/v1/planning/{plan['id']}/dates", params={"nouvelle_date": one_back}, headers=manager)
    assert ok.status_code == 200, ok.text


async def test_a_date_years_ago_or_a_shorter_frequency_is_refused(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, known_equipement: Callable[..., Any]
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    body = {"equipement_id": await known_equipement(), "frequence": "mensuel", "prochaine_date": "2000-01-01"}
    typo = await client.post("/api/v1/planning", json=body, headers=manager)
    earliest = refused_with_earliest_date(typo, "prochaine_date", now=now, days=30)
    assert typo.json()["detail"] == (
        "The next due date 2000-01-01T00:00:00Z is more than one interval of the frequency 'mensuel' (30 days) in "
        f"the past; the earliest date accepted is {earliest}. Give that date or a later one (a plan's next date is "
        "usually to come)."
    )
    # A weekly plan due 5 days ago is fine; made daily, its date would be 5 intervals ago: refused.
    plan = await make_plan(frequence="hebdomadaire", prochaine_date=iso(now - timedelta(days=5)))
    daily = await client.put(f"/api/v1/planning/{plan['id']}", json={"frequence": "daily"}, headers=manager)
    refused_with_earliest_date(daily, "frequence", now=now, days=1)
    together = {"frequence": "daily", "prochaine_date": iso(now + timedelta(days=1))}
    assert (await client.put(f"/api/v1/planning/{plan['id']}", json=together, headers=manager)).status_code == 200
    # A plan whose date is not changed keeps it, however old (the scheduler copes: test_scheduler.py).
    assert (
        await client.put(f"/api/v1/planning/{plan['id']}", json={"commentaire": "ok"}, headers=manager)
    ).status_code == 200


async def test_a_plan_history_says_who_changed_what(
    client: httpx.AsyncClient, manager: Headers, make_plan: Make, make_technicien: MakeTech, client_user: Headers
) -> None:
    tech, other = await make_technicien(), await make_technicien()
    plan = await make_plan(frequence="mensuel", prochaine_date=f"{Y}-05-01T08:00:00Z", technicien_id=tech.id)
    path = f"/api/v1/planning/{plan['id']}"
    put = await client.put(path, json={"frequence": "trimestriel", "commentaire": "Vidange"}, headers=manager)
    assert put.status_code == 200
    assert (await client.put(path, json={"commentaire": "Vidange"}, headers=manager)).status_code == 200  # no change
    redated = await client.patch(f"{path}/dates", params={"nouvelle_date": f"{Y}-05-10T09:30:00Z"}, headers=manager)
    assert redated.status_code == 200
    refused = await client.patch(f"{path}/dates", params={"nouvelle_date": "2001-01-01"}, headers=manager)
    assert refused.status_code == 422  # a refusal writes nothing

    response = await client.get(f"{path}/historique", headers=manager)
    assert response.status_code == 200 and response.headers["x-total-count"] == "3"
    rows = response.json()
    assert [(r["action"], r["user_id"]) for r in rows] == [
        ("creation", 1002),  # the manager fixture's user
        ("modification", 1002),
        ("redatation", 1002),
    ]
    assert rows[0]["detail"] == {
        "equipement_id": plan["equipement_id"],
        "frequence": "mensuel",
        "prochaine_date": f"{Y}-05-01T08:00:00Z",
        "derniere_date": None,
        "statut": "actif",
        "commentaire": None,
        "technicien_id": tech.id,
        "checklist_id": None,
    }
    assert rows[1]["detail"] == {
        "avant": {"frequence": "mensuel", "commentaire": None},
        "apres": {"frequence": "trimestriel", "commentaire": "Vidange"},
    }
    assert rows[2]["detail"] == {"avant": f"{Y}-05-01T08:00:00Z", "apres": f"{Y}-05-10T09:30:00Z"}
    assert rows[0]["planning_id"] == plan["id"] and rows[0]["horodatage"] <= rows[2]["horodatage"]
    newest_first = await client.get(f"{path}/historique", params={"sort": "-id", "limit": 1}, headers=manager)
    assert [r["action"] for r in newest_first.json()] == ["redatation"]

    # Who may read it: like the plan itself.
    assert (await client.get(f"{path}/historique", headers=tech.headers)).status_code == 200
    assert (await client.get(f"{path}/historique", headers=other.headers)).status_code == 404
    assert (await client.get(f"{path}/historique", headers=client_user)).status_code == 403
    assert (await client.get("/api/v1/planning/987654321/historique", headers=manager)).status_code == 404
    # Deleted: the plan is gone (404), its history stays in the table with who deleted it.
    assert (await client.delete(path, headers=manager)).status_code == 204
    assert (await client.get(f"{path}/historique", headers=manager)).status_code == 404
