"""The migrations that add sums fill them from what the read model already holds, exactly as the consumer
would have kept them: the read model is built through the consumer, the new tables are dropped (downgrade)
and made again from the older tables (upgrade)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from mif_assets.testing import equipement_data
from mif_common.app import consumer_for
from mif_common.db import make_engine
from mif_common.migrations import downgrade, upgrade
from mif_common.suite import service
from mif_common.testing.events import envelope
from mif_common.testing.plugin import TestDatabase
from mif_reports.config import ReportsSettings
from mif_reports.handlers import HANDLERS
from mif_reports.testing import CLIENT_B, E2, month_of_november, t

NEW_TABLES = ("agregat_total_jour", "agregat_total_mois", "panne_mois", "agregat_paire_mois")


async def test_the_new_sums_are_filled_as_the_consumer_keeps_them(
    mif_settings: ReportsSettings, mif_fresh_database: Callable[[str], TestDatabase]
) -> None:
    database = mif_fresh_database("reports_backfill")
    url = database.url_for("reports")
    engine = make_engine(url, schema="reports")
    try:
        sessionmaker = async_sessionmaker(engine, expire_on_commit=False, info={"source": "reports"})
        consumer = consumer_for(mif_settings, sessionmaker, HANDLERS)
        events = month_of_november()
        # A breakdown over a month's end, and one still running.
        for version, (statut, at) in enumerate(
            [("panne", t(30, 10, 10)), ("operationnel", t(3, 10)), ("panne", t(28, 8))], start=20
        ):
            data = equipement_data(E2, statut=statut, version=version, updated_at=at, client_id=CLIENT_B, type="pompe")
            events.append(("assets.equipement.status_changed.v1", data))
        for event_type, data in events:
            assert await consumer.handle(envelope(event_type, data), HANDLERS[event_type])

        async def tables() -> dict[str, set[tuple[Any, ...]]]:
            async with engine.connect() as conn:
                return {
                    name: {tuple(row) for row in await conn.execute(sa.text(f"SELECT * FROM reports.{name}"))}
                    for name in NEW_TABLES
                }

        kept = await tables()
        assert all(kept.values()), kept
        ini = service("reports").alembic_ini
        await asyncio.to_thread(downgrade, ini, url, "0002")
        await asyncio.to_thread(upgrade, ini, url)
        assert await tables() == kept
    finally:
        await engine.dispose()
