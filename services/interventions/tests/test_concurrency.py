"""Races with real commits (a database of their own, each request in its own transaction): concurrent
statut changes on one intervention, concurrent idempotent creations, lateness passes of several
replicas at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from mif_assets.testing import equipement_data
from mif_common.auth.tokens import StaticKeys, TokenVerifier
from mif_common.testing.keys import TEST_AUDIENCE, TEST_ISSUER, TestKeys
from mif_common.testing.plugin import TestDatabase
from mif_interventions import replicas
from mif_interventions.config import InterventionsSettings
from mif_interventions.jobs import run_lateness_pass
from mif_interventions.main import create_app
from mif_interventions.schemas import EquipementFact, PartsCostFact, TechnicienFact
from mif_interventions.testing import MANAGER_ID, new_id
from mif_planning.testing import technicien_data


@pytest.fixture(scope="module")
def race_database(mif_fresh_database: Callable[[str], TestDatabase]) -> TestDatabase:
    return mif_fresh_database("interventions_race")


@dataclass
class Live:
    app: FastAPI
    http: httpx.AsyncClient
    keys: TestKeys
    database: TestDatabase

    def headers(self, role: str, user_id: int = MANAGER_ID, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys.token(role, user_id=user_id, **kw)}"}

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.database.dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def replicas(self) -> tuple[int, int, int]:
        """A new equipment and technician, committed; returns (equipement_id, technicien_id, its user id)."""
        eid, tid, uid = new_id(), new_id(), new_id()
        async with self.app.state.sessionmaker() as session, session.begin():
            await replicas.remember_equipement(session, fact=EquipementFact.model_validate(equipement_data(eid)))
            await replicas.remember_technicien(session, fact=TechnicienFact.model_validate(technicien_data(tid, uid)))
        return eid, tid, uid


@pytest.fixture
async def live(race_database: TestDatabase, mif_keys: TestKeys, mif_amqp_url: str) -> AsyncIterator[Live]:
    settings = InterventionsSettings(
        environment="test",
        database_url=race_database.url_for("interventions"),
        amqp_url=mif_amqp_url,
        background_tasks=False,
        log_json=False,
        assets_url="http://127.0.0.1:9",
        revocation_enabled=False,  # the test tokens' users are known to no auth
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.token_verifier = TokenVerifier(
            StaticKeys(mif_keys.jwks), issuer=TEST_ISSUER, audience=TEST_AUDIENCE, algorithms=["EdDSA"]
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            yield Live(app=app, http=http, keys=mif_keys, database=race_database)


async def racing(live: Live, intervention_id: int, *requests: Callable[[], Any]) -> list[httpx.Response]:
    """Hold the intervention's row lock while the requests start, so they all wait on it and then race."""
    conn = await asyncpg.connect(live.database.dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SELECT 1 FROM interventions.intervention WHERE id = $1 FOR UPDATE", intervention_id)
        tasks = [asyncio.ensure_future(r()) for r in requests]
        await asyncio.sleep(0.3)  # every request is now blocked on the lock
        assert not any(t.done() for t in tasks)
        await transaction.rollback()
        return list(await asyncio.gather(*tasks))
    finally:
        await conn.close()


async def test_two_concurrent_starts_one_wins_the_other_gets_409(live: Live) -> None:
    eid, tid, uid = await live.replicas()
    created = await live.http.post(
        "/api/v1/interventions",
        json={"titre": "Course", "type": "corrective", "equipement_id": eid, "technicien_id": tid},
        headers=live.headers("responsable"),
    )
    iid = created.json()["id"]
    url = f"/api/v1/interventions/{iid}/demarrer"
    responses = await racing(
        live,
        iid,
        lambda: live.http.post(url, headers=live.headers("technicien", user_id=uid)),
        lambda: live.http.post(url, headers=live.headers("responsable")),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert "'en_cours'" in loser.json()["detail"]
    rows = await live.sql(
        "SELECT action, ancien_statut, statut FROM interventions.historique WHERE intervention_id = $1 ORDER BY id", iid
    )
    assert [tuple(r) for r in rows] == [("creation", None, "affectee"), ("changement_statut", "affectee", "en_cours")]
    events = await live.sql("SELECT type FROM interventions.outbox WHERE subject = $1 ORDER BY created_at", str(iid))
    assert [e["type"].split(".")[2] for e in events] == ["created", "started"]
    version = await live.sql("SELECT version FROM interventions.intervention WHERE id = $1", iid)
    assert version[0]["version"] == 2


async def test_two_concurrent_changes_with_the_same_etag_one_gets_412(live: Live) -> None:
    eid, tid, uid = await live.replicas()
    created = await live.http.post(
        "/api/v1/interventions",
        json={"titre": "ETag", "type": "corrective", "equipement_id": eid, "technicien_id": tid},
        headers=live.headers("responsable"),
    )
    iid, tag = created.json()["id"], created.headers["etag"]
    tech = {**live.headers("technicien", user_id=uid), "If-Match": tag}
    manager = {**live.headers("responsable"), "If-Match": tag}
    responses = await racing(
        live,
        iid,
        lambda: live.http.patch(f"/api/v1/interventions/{iid}/statut", params={"statut": "en_cours"}, headers=tech),
        lambda: live.http.patch(f"/api/v1/interventions/{iid}", json={"titre": "Renommée"}, headers=manager),
    )
    assert sorted(r.status_code for r in responses) == [200, 412]
    rows = await live.sql("SELECT action FROM interventions.historique WHERE intervention_id = $1", iid)
    assert len(rows) == 2  # creation + the winner's change, nothing of the loser


def _parts_cost(live: Live, intervention_id: int, cout: int, version: int) -> Callable[[], Any]:
    """inventory's parts cost handled as the consumer does: its own session and transaction."""
    fact = PartsCostFact.model_validate(
        {
            "intervention_id": intervention_id,
            "cout_pieces": cout,
            "lignes": [],
            "version": version,
            "actor_id": None,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
    )

    async def handle() -> None:
        async with live.app.state.sessionmaker() as session, session.begin():
            await replicas.record_parts_cost(session, fact=fact)

    return handle


async def test_a_parts_cost_racing_an_edit_and_an_older_cost_loses_nothing(live: Live) -> None:
    eid, _, _ = await live.replicas()
    created = await live.http.post(
        "/api/v1/interventions",
        json={"titre": "Pièces", "type": "corrective", "equipement_id": eid},
        headers=live.headers("responsable"),
    )
    iid = created.json()["id"]
    url = f"/api/v1/interventions/{iid}"
    # An edit (which reads and writes the whole row under its lock), the newer cost and an older one,
    # all waiting on the same row lock, then racing.
    responses = await racing(
        live,
        iid,
        lambda: live.http.patch(
            url, json={"titre": "Renommée", "cout_estime": 900}, headers=live.headers("responsable")
        ),
        _parts_cost(live, iid, 4200, 3),
        _parts_cost(live, iid, 1000, 2),
    )
    assert responses[0].status_code == 200
    [row] = await live.sql(
        "SELECT titre, cout_estime, cout_pieces, cout_pieces_version, version FROM interventions.intervention"
        " WHERE id = $1",
        iid,
    )
    assert tuple(row) == ("Renommée", 900, 4200, 3, 2)
    history = await live.sql(
        "SELECT action, apres FROM interventions.historique WHERE intervention_id = $1 AND action = 'pieces'", iid
    )
    # Version 3 is applied once; version 2 either came first (then was replaced) or was ignored.
    assert len(history) in (1, 2) and '"cout_pieces": 4200' in history[-1]["apres"]


async def test_concurrent_retries_with_one_idempotency_key_create_one_intervention(live: Live) -> None:
    eid, _, _ = await live.replicas()
    headers = {**live.headers("responsable"), "Idempotency-Key": f"k-{eid}"}
    body = {"titre": "Une seule", "type": "corrective", "equipement_id": eid}
    responses = await asyncio.gather(
        *(live.http.post("/api/v1/interventions", json=body, headers=headers) for _ in range(4))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    count = await live.sql("SELECT count(*) AS n FROM interventions.intervention WHERE equipement_id = $1", eid)
    assert count[0]["n"] == 1


async def test_lateness_passes_of_several_replicas_announce_each_once(live: Live) -> None:
    eid, _, _ = await live.replicas()
    ids = []
    for _ in range(12):
        created = await live.http.post(
            "/api/v1/interventions",
            json={"titre": "En retard", "type": "corrective", "equipement_id": eid, "priorite": "urgente"},
            headers=live.headers("responsable"),
        )
        ids.append(created.json()["id"])
    conn = await asyncpg.connect(live.database.dsn)
    try:  # deadlines in the past (the API refuses them at creation)
        past = datetime.now(UTC) - timedelta(minutes=5)
        await conn.execute("UPDATE interventions.intervention SET date_limite = $1 WHERE equipement_id = $2", past, eid)
    finally:
        await conn.close()
    settings = live.app.state.settings.model_copy(update={"late_batch_size": 5})
    maker = live.app.state.sessionmaker
    rounds = [await asyncio.gather(*(run_lateness_pass(maker, settings) for _ in range(3))) for _ in range(4)]
    assert sum(sum(r) for r in rounds) >= 12  # other tests' rows may be late too
    late = await live.sql(
        "SELECT subject, count(*) AS n FROM interventions.outbox WHERE type = 'interventions.intervention.late.v1'"
        " AND subject = ANY($1::text[]) GROUP BY subject",
        [str(i) for i in ids],
    )
    assert sorted(int(r["subject"]) for r in late) == sorted(ids)
    assert {r["n"] for r in late} == {1}
