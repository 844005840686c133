"""The "late" rule is one rule: the list filter, the `en_retard` field, the KPIs' count and the lateness
job's SQL agree on every statut, with a deadline passed, to come, or none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_interventions.lateness import is_late, late_clause
from mif_interventions.models import Intervention, Statut
from mif_interventions.testing import World, new_id


async def test_the_list_the_field_the_kpis_and_the_job_agree_on_who_is_late(
    client: httpx.AsyncClient, world: World, db_session: AsyncSession
) -> None:
    org = new_id()
    eq = await world.equipement(client_id=org)
    tech = (await world.technicien()).id
    now = datetime.now(UTC)
    deadlines = (("passée", now - timedelta(hours=1)), ("à venir", now + timedelta(days=1)), ("sans", None))
    rows: list[dict[str, Any]] = [
        {
            "titre": f"{statut.value} {label}",
            "type": "corrective",
            "priorite": "normale",
            "statut": statut.value,
            "equipement_id": eq,
            "client_id": org,
            "technicien_id": None if statut is Statut.ouverte else tech,
            "version": 1,
            "date_creation": now - timedelta(days=3),
            "date_modification": now - timedelta(days=3),
            "date_limite": limite,
        }
        for statut in Statut
        for label, limite in deadlines
    ]
    ids = (await db_session.execute(sa.insert(Intervention).returning(Intervention.id), rows)).scalars().all()
    expected = {i for i, row in zip(ids, rows, strict=True) if is_late(row["date_limite"], row["statut"], now)}
    assert len(expected) == 4  # the open statuts with a passed deadline

    headers = world.client_user(org)
    listed = await client.get("/api/v1/interventions", params={"limit": 100}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert {item["id"] for item in listed.json() if item["en_retard"]} == expected
    filtered = await client.get("/api/v1/interventions", params={"limit": 100, "en_retard": "true"}, headers=headers)
    assert {item["id"] for item in filtered.json()} == expected
    on_time = await client.get("/api/v1/interventions", params={"limit": 100, "en_retard": "false"}, headers=headers)
    assert {item["id"] for item in on_time.json()} == set(ids) - expected
    for late_id in expected:
        one = await client.get(f"/api/v1/interventions/{late_id}", headers=headers)
        assert one.json()["en_retard"] is True

    kpis = await client.get("/api/v1/dashboard/kpis", headers=headers)
    assert kpis.json()["en_retard"] == len(expected)
    in_sql = await db_session.scalars(sa.select(Intervention.id).where(Intervention.id.in_(ids), late_clause(now)))
    assert set(in_sql) == expected
