"""Periodic work of the interventions service (`ServiceParts.periodic_jobs`, run in every replica)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.datetimes import now
from mif_common.jobs import PeriodicJob
from mif_interventions import repository as repo
from mif_interventions.config import InterventionsSettings
from mif_interventions.events import InterventionLate
from mif_interventions.models import ActionHistorique
from mif_interventions.service import _historiser, _json, _publier, systeme

logger = logging.getLogger(__name__)


async def mark_late(session: AsyncSession, *, at: datetime | None = None, limit: int = 200) -> int:
    """One pass of the lateness job: announce (once) each open intervention past its deadline. Safe
    with several replicas: rows are claimed with SKIP LOCKED and marked in the same transaction as
    their event."""
    at = at or now()
    auteur = systeme("lateness job")
    late = await repo.claim_late(session, now=at, limit=limit)
    for intervention in late:
        intervention.late_notified_at = at
        _historiser(
            session,
            intervention,
            action=ActionHistorique.retard,
            auteur=auteur,
            at=at,
            remarque="Date limite dépassée",
            apres={"date_limite": _json(intervention.date_limite)},
        )
        await _publier(session, InterventionLate, intervention, previous_statut=None, auteur=auteur, at=at)
    await session.flush()
    return len(late)


async def run_lateness_pass(sessionmaker: async_sessionmaker[AsyncSession], settings: InterventionsSettings) -> int:
    """One pass in its own transaction: announce late interventions, forget old idempotency keys.
    Several replicas may run it at once (rows are claimed with SKIP LOCKED)."""
    async with sessionmaker() as session, session.begin():
        claimed = await mark_late(session, limit=settings.late_batch_size)
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
