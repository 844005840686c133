"""The inventory service's periodic passes: forgetting idempotency keys past their time."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from mif_common.datetimes import now
from mif_common.jobs import PeriodicJob
from mif_inventory import repository as repo
from mif_inventory.config import InventorySettings


async def purge_idempotency_keys(app: FastAPI) -> bool:
    """One pass: keys older than the settings' time are forgotten (a retry after that is a new movement)."""
    settings: InventorySettings = app.state.settings
    async with app.state.sessionmaker() as session, session.begin():
        await repo.purge_idempotency_keys(session, older_than=now() - timedelta(hours=settings.idempotency_ttl_hours))
    return False


def periodic_jobs(settings: InventorySettings) -> list[PeriodicJob]:
    return [PeriodicJob("idempotency-keys", settings.idempotency_purge_interval_seconds, purge_idempotency_keys)]
