"""Periodic work of the interventions service (`ServiceParts.periodic_jobs`, run in every replica)."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.datetimes import now
from mif_common.jobs import PeriodicJob
from mif_interventions import repository as repo
from mif_interventions import service
from mif_interventions.config import InterventionsSettings

logger = logging.getLogger(__name__)


async def run_lateness_pass(sessionmaker: async_sessionmaker[AsyncSession], settings: InterventionsSettings) -> int:
    """One pass in its own transaction: announce late interventions, forget old idempotency keys.
    Several replicas may run it at once (rows are claimed with SKIP LOCKED)."""
    async with sessionmaker() as session, session.begin():
        claimed = await service.mark_late(session, limit=settings.late_batch_size)
    async with sessionmaker() as session, session.begin():
        older_than = now() - timedelta(hours=settings.idempotency_ttl_hours)
        await repo.purge_idempotency_keys(session, older_than=older_than)
    return claimed


async def _lateness(app: FastAPI) -> bool:
    settings: InterventionsSettings = app.state.settings
    claimed = await run_lateness_pass(app.state.sessionmaker, settings)
    if claimed:
        logger.info("announced %d late intervention(s)", claimed)
    return claimed >= settings.late_batch_size


def periodic_jobs(settings: InterventionsSettings) -> list[PeriodicJob]:
    """Lateness every `late_check_interval_seconds` (at once again while a pass fills its batch)."""
    return [PeriodicJob("lateness", settings.late_check_interval_seconds, _lateness)]
