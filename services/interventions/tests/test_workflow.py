"""The workflow of DOMAIN.md §4, generated from the one transition table (mif_interventions.workflow):
every action and every `PATCH /statut` target, from every statut, for every role; the refusal
sentences; the dates stamped; the history row of each change and its immutability in the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_interventions.models import Statut
from mif_interventions.testing import MANAGER_ID, Headers, World, new_id, outbox_envelopes
from mif_interventions.workflow import TRANSITIONS, Acteur, Action, action_towards, find

ROLES = ("admin", "responsable", "technicien", "client")
# How the manager brings a new intervention (requested by a client user, so that the client's own
# cancel applies) to each statut; the technician is assigned on every path past `ouverte`.
PATHS: dict[Statut, list[Action]] = {
    Statut.ouverte: [],
    Statut.affectee: [Action.affecter],
    Statut.en_cours: [Action.affecter, Action.demarrer],
    Statut.en_attente: [Action.affecter, Action.demarrer, Action.suspendre],
    Statut.cloturee: [Action.affecter, Action.demarrer, Action.cloturer],
    Statut.annulee: [Action.affecter, Action.annuler],
    Statut.archivee: [Action.affecter, Action.demarrer, Action.cloturer, Action.archiver],
}
ACTEUR_OF_ROLE = {
    "admin": Acteur.responsable,
    "responsable": Acteur.responsable,
    "technicien": Acteur.technicien,
    "client": Acteur.client,
}


def body_for(action: Action, other_tech: int) -> dict[str, Any]:
    if action is Action.affecter:
        return {"technicien_id": other_tech}
    if action in (Action.suspendre, Action.annuler):
        return {"remarque": "Pièce manquante"}
    if action is Action.cloturer:
        return {"rapport": "Réparé", "duree_reelle": 30, "cout_reel": 12000}
    return {}


class Setup:
    def __init__(self, world: World) -> None:
        self.world = world

    async def prepare(self) -> None:
        self.org = new_id()
        self.tech = await self.world.technicien()
        self.other_tech = await self.world.technicien()
        self.client_headers = self.world.client_user(self.org)
        self.equipement = await self.world.equipement(client_id=self.org)

    def headers(self, role: str) -> Headers:
        if role == "technicien":
            return self.tech.headers
        if role == "client":
            return self.client_headers
        return self.world.auth_headers(role, user_id=MANAGER_ID)

    async def intervention_in(self, statut: Statut) -> dict[str, Any]:
        created = await self.world.intervention(headers=self.client_headers, equipement_id=self.equipement)
        for step in PATHS[statut]:
            body = body_for(step, self.tech.id)
            response = await self.world.act(created["id"], step.value, **body)
            assert response.status_code == 200, (statut, step, response.text)
        return created


def expected_status(statut: Statut, action: Action | None, role: str) -> int:
    if role == "technicien" and statut is Statut.ouverte:
        return 404  # not assigned to them: they cannot see it
    move = find(statut, action) if action is not None else None
    if move is None:
        return 409
    return 200 if ACTEUR_OF_ROLE[role] in move.qui else 403


@pytest.mark.parametrize("statut", list(Statut))
async def test_every_action_from_every_statut_for_every_role(world: World, statut: Statut) -> None:
    setup = Setup(world)
    await setup.prepare()
    failures = []
    for action in Action:
        for role in ROLES:
            created = await setup.intervention_in(statut)
            body = body_for(action, setup.other_tech.id)
            response = await world.act(created["id"], action.value, setup.headers(role), **body)
            expected = expected_status(statut, action, role)
            if response.status_code != expected:
                failures.append(
                    f"{statut} {action} as {role}: {response.status_code} (expected {expected}) {response.text[:200]}"
                )
                continue
            if expected == 200:
                move = find(statut, action)
                assert move is not None
                assert response.json()["statut"] == move.vers.value
            elif expected in (403, 409):
                problem = response.json()
                assert response.headers["content-type"] == "application/problem+json"
                assert "Allowed from" in problem["detail"] or "you may do" in problem["detail"]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("statut", list(Statut))
async def test_every_patch_statut_target_from_every_statut_for_every_role(world: World, statut: Statut) -> None:
    setup = Setup(world)
    await setup.prepare()
    failures = []
    for target in Statut:
        for role in ROLES:
            created = await setup.intervention_in(statut)
            params: dict[str, Any] = {"statut": target.value, "remarque": "Raison"}
            action = action_towards(statut, target)
            if target is Statut.affectee and statut in (Statut.ouverte, Statut.affectee):
                action = Action.affecter
                params["technicien_id"] = setup.other_tech.id
            response = await world.http.patch(
                f"/api/v1/interventions/{created['id']}/statut", params=params, headers=setup.headers(role)
            )
            expected = expected_status(statut, action, role)
            if response.status_code != expected:
                failures.append(
                    f"{statut} -> {target} as {role}: {response.status_code} (want {expected}) {response.text[:200]}"
                )
            elif expected == 200:
                assert response.json()["statut"] == target.value
    assert not failures, "\n".join(failures)


def test_the_table_is_the_one_of_the_domain() -> None:
    moves = {(t.depuis.value, t.vers.value) for t in TRANSITIONS}
    assert moves == {
        ("ouverte", "affectee"),
        ("ouverte", "annulee"),
        ("affectee", "en_cours"),
        ("affectee", "ouverte"),
        ("affectee", "affectee"),
        ("affectee", "annulee"),
        ("en_cours", "en_attente"),
        ("en_cours", "cloturee"),
        ("en_cours", "annulee"),
        ("en_attente", "en_cours"),
        ("en_attente", "cloturee"),
        ("en_attente", "annulee"),
        ("cloturee", "archivee"),
        ("annulee", "archivee"),
    }
    assert not [t for t in TRANSITIONS if t.depuis is Statut.archivee]


async def test_refusals_name_the_allowed_moves(world: World, client: httpx.AsyncClient) -> None:
    tech = await world.technicien()
    created = await world.intervention(technicien_id=tech.id)
    iid = created["id"]
    archive = await world.act(iid, "archiver")
    assert archive.status_code == 409
    assert archive.json()["detail"] == (
        f"Intervention {iid} is 'affectee': 'archiver' is not possible from there. Allowed from 'affectee': "
        "demarrer (→ en_cours), desaffecter (→ ouverte), affecter (→ affectee), annuler (→ annulee)."
    )
    assert archive.json()["allowed"] == ["demarrer", "desaffecter", "affecter", "annuler"]
    patch = await client.patch(
        f"/api/v1/interventions/{iid}/statut", params={"statut": "cloturee"}, headers=world.manager
    )
    assert patch.status_code == 409
    assert patch.json()["detail"].startswith(f"Intervention {iid} is 'affectee' and cannot go to 'cloturee'.")
    unassign = await world.act(iid, "desaffecter", tech.headers)
    assert unassign.status_code == 403
    assert unassign.json()["detail"] == (
        "'desaffecter' from 'affectee' is for a responsable. What you may do from 'affectee': demarrer (→ en_cours)."
    )
    await world.act(iid, "demarrer", tech.headers)
    await world.act(iid, "cloturer", tech.headers)
    tech_archive = await world.act(iid, "archiver", tech.headers)
    assert tech_archive.status_code == 403
    assert tech_archive.json()["detail"].endswith("What you may do from 'cloturee': none.")
    archived = await world.act(iid, "archiver")
    final = await world.act(iid, "annuler", remarque="trop tard")
    assert archived.status_code == 200 and final.status_code == 409
    assert final.json()["detail"].endswith("Allowed from 'archivee': none.")


async def test_reasons_are_required_on_the_actions_and_optional_on_the_patch_route(
    world: World, client: httpx.AsyncClient
) -> None:
    tech = await world.technicien()
    created = await world.intervention()
    iid = created["id"]
    unknown = await world.act(iid, "affecter", technicien_id=987654)
    assert unknown.status_code == 422 and unknown.json()["detail"] == "Technician 987654 is not an active technician."
    no_reason = await world.act(iid, "annuler")
    assert no_reason.status_code == 422 and no_reason.json()["errors"] == [
        {"field": "remarque", "message": "required to annuler"}
    ]
    assert (await world.act(iid, "affecter", technicien_id=tech.id)).status_code == 200
    same = await world.act(iid, "affecter", technicien_id=tech.id)
    assert same.status_code == 409 and "already assigned" in same.json()["detail"]
    await world.act(iid, "demarrer", tech.headers)
    explicit = await world.act(iid, "suspendre", tech.headers)
    assert explicit.status_code == 422 and explicit.json()["errors"][0]["field"] == "remarque"
    # The frontend's "Mettre en attente": the PATCH route with no remarque is accepted, and said so.
    pause = await client.patch(
        f"/api/v1/interventions/{iid}/statut", params={"statut": "en_attente"}, headers=tech.headers
    )
    assert pause.status_code == 200 and pause.json()["statut"] == "en_attente"
    last = (await client.get(f"/api/v1/interventions/{iid}/historique", headers=world.manager)).json()[-1]
    assert (last["statut"], last["remarque"]) == ("en_attente", "Aucun motif indiqué.")
    cancel = await client.patch(
        f"/api/v1/interventions/{iid}/statut", params={"statut": "annulee"}, headers=world.manager
    )
    assert cancel.status_code == 200 and cancel.json()["statut"] == "annulee"
    bad_target = await client.patch(
        f"/api/v1/interventions/{iid}/statut", params={"statut": "finie"}, headers=tech.headers
    )
    assert bad_target.status_code == 422 and bad_target.json()["errors"][0]["field"] == "statut"


async def test_assigning_without_a_technician_asks_planning_and_never_answers_500(
    world: World, client: httpx.AsyncClient
) -> None:
    """Planning (the owner of the choice) is not running here: 503 with Retry-After, nothing changed. The
    recommendation itself is exercised end to end through the gateway (tests/test_contract_e2e.py)."""
    tech = await world.technicien()
    created = await world.intervention()
    iid = created["id"]
    for attempt in (
        client.patch(f"/api/v1/interventions/{iid}/statut", params={"statut": "affectee"}, headers=world.manager),
        client.post(f"/api/v1/interventions/{iid}/affecter", headers=world.manager),
        client.post(f"/api/v1/interventions/{iid}/affecter", json={}, headers=world.manager),
    ):
        answer = await attempt
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.headers["content-type"] == "application/problem+json"
        assert "planning service did not answer" in answer.json()["detail"]
    unchanged = await client.get(f"/api/v1/interventions/{iid}", headers=world.manager)
    assert unchanged.json()["statut"] == "ouverte" and unchanged.json()["technicien_id"] is None
    # Who may not assign is told so by the workflow, before planning is asked.
    refused = await client.patch(
        f"/api/v1/interventions/{iid}/statut", params={"statut": "affectee"}, headers=tech.headers
    )
    assert refused.status_code == 404  # a technician does not see an intervention not assigned to them
    assigned = await world.act(iid, "affecter", technicien_id=tech.id)
    mine = await client.patch(
        f"/api/v1/interventions/{iid}/statut", params={"statut": "affectee"}, headers=tech.headers
    )
    assert assigned.status_code == 200 and mine.status_code == 403
    assert "is for a responsable" in mine.json()["detail"]


async def test_a_client_cancels_only_its_organisations_own_open_request(world: World) -> None:
    org = new_id()
    equipement = await world.equipement(client_id=org)
    user = world.client_user(org)
    by_manager = await world.intervention(equipement_id=equipement)
    refused = await world.act(by_manager["id"], "annuler", user, remarque="plus besoin")
    assert refused.status_code == 403
    requested = await world.intervention(headers=user, equipement_id=equipement)
    colleague = world.client_user(org)  # another user of the same organisation
    assert (await world.act(requested["id"], "annuler", colleague, remarque="plus besoin")).status_code == 200


async def test_a_full_life_stamps_dates_writes_history_and_events(
    world: World, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    tech = await world.technicien(full_name="Salma Idrissi")
    other = await world.technicien()
    created = await world.intervention(titre="Vibration pompe")
    iid = created["id"]
    tech_ua = {**tech.headers, "User-Agent": "mobile/1.0", "X-Forwarded-For": "198.51.100.1, 192.0.2.44"}
    steps: list[tuple[str, Headers, dict[str, Any]]] = [
        ("affecter", world.manager, {"technicien_id": other.id}),
        ("affecter", world.manager, {"technicien_id": tech.id, "remarque": "Plus proche"}),
        ("desaffecter", world.manager, {}),
        ("affecter", world.manager, {"technicien_id": tech.id}),
        ("demarrer", tech_ua, {}),
        ("suspendre", tech_ua, {"remarque": "Attente pièce"}),
        ("reprendre", tech_ua, {}),
    ]
    for action, headers, body in steps:
        response = await world.act(iid, action, headers, **body)
        assert response.status_code == 200, (action, response.text)
    comment = await client.post(
        f"/api/v1/interventions/{iid}/commentaires", json={"contenu": "Pièce reçue"}, headers=tech.headers
    )
    assert comment.status_code == 201
    closed = await world.act(iid, "cloturer", tech_ua, rapport="Roulement changé", cout_reel=45000)
    body = closed.json()
    assert body["statut"] == "cloturee" and body["rapport"] == "Roulement changé" and body["cout_reel"] == 45000
    assert body["duree_reelle"] is not None and body["duree_reelle"] >= 0  # time since work started
    for stamp in ("date_affectation", "date_debut_travaux", "date_fin_travaux", "date_cloture"):
        assert body[stamp] is not None, stamp
    assert body["date_fin_travaux"] == body["date_cloture"] and body["date_archivage"] is None
    archived = (await world.act(iid, "archiver")).json()
    assert archived["date_archivage"] is not None and archived["version"] == 10

    history = (await client.get(f"/api/v1/interventions/{iid}/historique", headers=world.manager)).json()
    assert [(h["action"], h["ancien_statut"], h["statut"]) for h in history] == [
        ("creation", None, "ouverte"),
        ("affectation", "ouverte", "affectee"),
        ("affectation", "affectee", "affectee"),
        ("desaffectation", "affectee", "ouverte"),
        ("affectation", "ouverte", "affectee"),
        ("changement_statut", "affectee", "en_cours"),
        ("changement_statut", "en_cours", "en_attente"),
        ("changement_statut", "en_attente", "en_cours"),
        ("commentaire", None, "en_cours"),
        ("changement_statut", "en_cours", "cloturee"),
        ("changement_statut", "cloturee", "archivee"),
    ]
    assert history[2]["avant"] == {"statut": "affectee", "technicien_id": other.id}
    assert history[2]["apres"]["technicien_id"] == tech.id and history[2]["remarque"] == "Plus proche"
    assert history[6]["remarque"] == "Attente pièce" and history[6]["user_id"] == tech.user_id
    assert history[6]["ip"] == "192.0.2.44" and history[6]["user_agent"] == "mobile/1.0"
    assert history[8]["remarque"] == "Pièce reçue"
    assert history[9]["apres"]["rapport"] == "Roulement changé"
    # Clients and technicians see the trail without other people's addresses.
    seen_by_tech = (await client.get(f"/api/v1/interventions/{iid}/historique", headers=tech.headers)).json()
    assert {(h["ip"], h["user_agent"]) for h in seen_by_tech} == {(None, None)}

    events = await outbox_envelopes(db_session, intervention_id=iid)
    verbs = "created assigned assigned unassigned assigned started paused resumed closed archived"
    assert [e["type"].split(".")[2] for e in events] == verbs.split()
    previous = [None, "ouverte", None, "affectee", "ouverte", "affectee", "en_cours", "en_attente", "en_cours"]
    assert [e["data"]["previous_statut"] for e in events] == [*previous, "cloturee"]
    started = events[5]["data"]
    assert (
        started["statut"] == "en_cours" and started["technicien_id"] == tech.id and started["actor_id"] == tech.user_id
    )
    times = [datetime.fromisoformat(e["data"]["occurred_at"]) for e in events]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    comments = (await client.get(f"/api/v1/interventions/{iid}/commentaires", headers=world.manager)).json()
    assert [c["contenu"] for c in comments] == ["Pièce reçue"] and comments[0]["user_id"] == tech.user_id


async def test_the_history_is_append_only_in_the_database(world: World, db_session: AsyncSession) -> None:
    created = await world.intervention()
    for statement in (
        "UPDATE historique SET remarque = 'falsifié' WHERE intervention_id = :id",
        "DELETE FROM historique WHERE intervention_id = :id",
        "TRUNCATE historique CASCADE",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db_session.begin_nested():
                await db_session.execute(text(statement), {"id": created["id"]})
    rows = (
        await db_session.execute(
            text("SELECT action, remarque FROM historique WHERE intervention_id = :id"), {"id": created["id"]}
        )
    ).all()
    assert [tuple(r) for r in rows] == [("creation", None)]


async def test_stamps_are_set_once(world: World, db_session: AsyncSession) -> None:
    tech = await world.technicien()
    created = await world.intervention(technicien_id=tech.id)
    started = (await world.act(created["id"], "demarrer", tech.headers)).json()
    await world.act(created["id"], "suspendre", tech.headers, remarque="pause")
    resumed = (await world.act(created["id"], "reprendre", tech.headers)).json()
    assert resumed["date_debut_travaux"] == started["date_debut_travaux"]
    assert datetime.fromisoformat(started["date_debut_travaux"].replace("Z", "+00:00")) <= datetime.now(UTC)


async def test_writes_honour_if_match(world: World, client: httpx.AsyncClient) -> None:
    tech = await world.technicien()
    created = await world.intervention(technicien_id=tech.id)
    iid = created["id"]
    stale = await client.post(f"/api/v1/interventions/{iid}/demarrer", headers={**tech.headers, "If-Match": '"7"'})
    assert stale.status_code == 412 and stale.headers["etag"] == '"1"'
    fresh = await client.post(f"/api/v1/interventions/{iid}/demarrer", headers={**tech.headers, "If-Match": '"1"'})
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'
    any_version = await client.patch(
        f"/api/v1/interventions/{iid}/statut",
        params={"statut": "en_attente", "remarque": "pause"},
        headers={**tech.headers, "If-Match": "*"},
    )
    assert any_version.status_code == 200 and any_version.headers["etag"] == '"3"'
