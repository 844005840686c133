"""Linking a preventive intervention to its occurrence takes the plan's lock before the occurrence's,
the order every writer of plans uses: deleting the plan at the same moment waits instead of
deadlocking (real commits on engines of their own)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from mif_common.db import make_engine, make_sessionmaker
from mif_interventions.testing import intervention_data
from mif_planning import plans, replicas
from mif_planning.config import PlanningSettings
from mif_planning.schemas import InterventionFact

DUE = datetime(2020, 2, 3, 8, 0, tzinfo=UTC)  # a date of its own: no other test's occurrence is there
EQUIPEMENT_ID = 7_800_001
INTERVENTION_ID = 7_800_002


@pytest.fixture
async def engines(mif_settings: PlanningSettings) -> AsyncIterator[list[AsyncEngine]]:
    engines = [make_engine(mif_settings.database_url, schema="planning", pool_size=2) for _ in range(3)]
    yield engines
    async with engines[0].begin() as conn:
        await conn.execute(text("DELETE FROM plan WHERE equipement_id = :e"), {"e": EQUIPEMENT_ID})
        await conn.execute(text("DELETE FROM intervention_ref WHERE intervention_id = :i"), {"i": INTERVENTION_ID})
        await conn.execute(text("DELETE FROM equipement_ref WHERE equipement_id = :e"), {"e": EQUIPEMENT_ID})
    for engine in engines:
        await engine.dispose()


async def test_deleting_a_plan_while_its_intervention_is_linked_waits_instead_of_deadlocking(
    engines: list[AsyncEngine],
) -> None:
    key = f"lock-order:{DUE.isoformat()}"
    async with engines[0].begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO equipement_ref (equipement_id, nom, statut, version, updated_at)"
                " VALUES (:e, 'Ordre des verrous', 'operationnel', 1, now())"
            ),
            {"e": EQUIPEMENT_ID},
        )
        plan_id = await conn.scalar(
            text(
                "INSERT INTO plan (equipement_id, frequence, prochaine_date, statut)"
                " VALUES (:e, 'mensuel', :d, 'actif') RETURNING id"
            ),
            {"e": EQUIPEMENT_ID, "d": DUE + timedelta(days=30)},
        )
        await conn.execute(
            text(
                "INSERT INTO occurrence (occurrence_key, planning_id, equipement_id, due_at, emitted_at)"
                " VALUES (:k, :p, :e, :d, :d)"
            ),
            {"k": key, "p": plan_id, "e": EQUIPEMENT_ID, "d": DUE},
        )
    fact = InterventionFact.model_validate(
        intervention_data(
            INTERVENTION_ID,
            "ouverte",
            equipement_id=EQUIPEMENT_ID,
            type="preventive",
            actor_id=None,
            planning_id=plan_id,
            occurrence_key=key,
            occurred_at=DUE + timedelta(minutes=1),
        )
    )
    handler_sessions = make_sessionmaker(engines[0], source="planning")
    api_sessions = make_sessionmaker(engines[1], source="planning")

    async with handler_sessions() as handler, handler.begin():
        await replicas.track_intervention(handler, fact=fact)
        # The event's transaction holds the plan now, so nobody can lock it from elsewhere ...
        async with engines[2].connect() as probe:
            with pytest.raises(DBAPIError) as held:
                await probe.execute(text("SELECT id FROM plan WHERE id = :p FOR UPDATE NOWAIT"), {"p": plan_id})
            assert getattr(held.value.orig, "sqlstate", None) == "55P03"

        # ... and a manager deleting the plan now queues behind it.
        async def delete() -> None:
            async with api_sessions() as api, api.begin():
                await plans.delete_plan(api, plan_id=plan_id)

        deleting = asyncio.create_task(delete())
        await asyncio.sleep(0.3)
        assert not deleting.done()
    await asyncio.wait_for(deleting, timeout=10)  # no deadlock: it completes once the event is committed

    async with engines[2].connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM plan WHERE id = :p"), {"p": plan_id}) == 0
        assert await conn.scalar(text("SELECT count(*) FROM occurrence WHERE occurrence_key = :k"), {"k": key}) == 0
