"""The migration that adds the daily rollups fills them from the hourly ones exactly as the insert
statement keeps them: readings stored through it, the table dropped (downgrade) and made again (upgrade)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from mif_assets import releves_repository as repo
from mif_common.db import make_engine
from mif_common.migrations import downgrade, upgrade
from mif_common.suite import service
from mif_common.testing.plugin import TestDatabase


async def test_the_daily_rollups_are_filled_as_the_insert_keeps_them(
    mif_fresh_database: Callable[[str], TestDatabase],
) -> None:
    database = mif_fresh_database("assets_backfill")
    url = database.url_for("assets")
    engine = make_engine(url, schema="assets")
    try:
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        async with sessionmaker.begin() as session:
            eid = (
                await session.execute(
                    sa.text("INSERT INTO equipement (nom, type, localisation) VALUES ('P', 'pompe', 'A') RETURNING id")
                )
            ).scalar_one()
            meters = [
                (
                    await session.execute(
                        sa.text(
                            "INSERT INTO compteur (equipement_id, code, nom, nature, unite)"
                            " VALUES (:e, :c, :c, 'jauge', 'u') RETURNING id"
                        ),
                        {"e": eid, "c": code},
                    )
                ).scalar_one()
                for code in ("temperature", "vibration")
            ]
            start = datetime(2024, 2, 27, 21, 0, tzinfo=UTC)
            for n, compteur_id in enumerate(meters):
                # Every 25 minutes for 83 hours across a leap February's end, in two batches out of order.
                instants = [start + timedelta(minutes=25 * i) for i in range(200)]
                values = [float((i * (n + 3)) % 17) for i in range(200)]
                for part in (slice(120, None), slice(None, 120)):
                    await repo.insert_releves(
                        session,
                        compteur_id=compteur_id,
                        source="api",
                        horodatages=instants[part],
                        valeurs=values[part],
                        remises=[False] * len(instants[part]),
                    )

        async def days() -> set[tuple[Any, ...]]:
            async with engine.connect() as conn:
                return {tuple(row) for row in await conn.execute(sa.text("SELECT * FROM assets.releve_jour"))}

        kept = await days()
        assert len(kept) == 2 * 5
        ini = service("assets").alembic_ini
        await asyncio.to_thread(downgrade, ini, url, "0002")
        await asyncio.to_thread(upgrade, ini, url)
        assert await days() == kept
    finally:
        await engine.dispose()
