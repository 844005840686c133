"""Periodic work of the documents service, housekeeping of stored files: the cleanup job (orphans,
abandoned uploads, due purges, `ServiceParts.periodic_jobs`), and the re-encryption that moves files to
the active key after a rotation (an operator's command, `mif_documents.cli`).

Each step is its own short unit of work and safe to run on several replicas at once (deletes are
idempotent, purge rows are claimed with SKIP LOCKED).

- Orphans: a file no document row needs (a crash between the file write and the commit, or the old
  copy left by a re-encryption) is deleted once older than the grace period. Until then it is never
  served: downloads start from the row, not from the file.
- Abandoned uploads: staged files of uploads interrupted by a crash, same grace period.
- Purges: deleted documents whose `purge_after` has passed lose their file; `purged_at` records it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common import datetimes
from mif_common.jobs import PeriodicJob
from mif_documents import repository as repo
from mif_documents.config import DocumentsSettings
from mif_documents.metrics import FILES_REMOVED
from mif_documents.storage import StoredKey
from mif_documents.vault import Vault

logger = logging.getLogger(__name__)

SCAN_BATCH = 500
PURGE_BATCH = 200


@dataclass(frozen=True, slots=True)
class CleanupReport:
    orphans: int = 0
    incomplete: int = 0
    purged: int = 0


async def cleanup_once(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    vault: Vault,
    grace: timedelta,
    now: datetime | None = None,
) -> CleanupReport:
    """One pass of the cleanup job."""
    moment = now or datetimes.now()
    cutoff = moment - grace
    storage = vault.storage
    incomplete = await storage.purge_incomplete(older_than=cutoff)

    orphans = 0
    batch: list[StoredKey] = []

    async def sweep(candidates: list[StoredKey]) -> int:
        async with sessionmaker() as session:
            needed = await repo.known_storage_keys(session, [c.key for c in candidates])
        removed = 0
        for candidate in candidates:
            if candidate.key not in needed and await storage.delete(candidate.key):
                logger.warning(
                    "removed orphan file %s (no document row, %s old)", candidate.key, moment - candidate.modified_at
                )
                removed += 1
        return removed

    async for stored in storage.iter_keys():
        if stored.modified_at < cutoff:
            batch.append(stored)
        if len(batch) >= SCAN_BATCH:
            orphans += await sweep(batch)
            batch = []
    if batch:
        orphans += await sweep(batch)

    purged = 0
    while True:
        async with sessionmaker() as session, session.begin():
            due = await repo.due_purges(session, now=moment, limit=PURGE_BATCH)
            for document in due:
                await storage.delete(document.storage_key)
                document.purged_at = moment
        purged += len(due)
        if len(due) < PURGE_BATCH:
            break

    FILES_REMOVED.labels("orphan").inc(orphans)
    FILES_REMOVED.labels("incomplete").inc(incomplete)
    FILES_REMOVED.labels("purged").inc(purged)
    if orphans or incomplete or purged:
        logger.info("cleanup: %s orphan file(s), %s abandoned upload(s), %s purge(s)", orphans, incomplete, purged)
    return CleanupReport(orphans=orphans, incomplete=incomplete, purged=purged)


async def _cleanup(app: FastAPI) -> bool:
    await cleanup_once(
        sessionmaker=app.state.sessionmaker,
        vault=app.state.vault,
        grace=timedelta(seconds=app.state.settings.orphan_grace_seconds),
    )
    return False


def periodic_jobs(settings: DocumentsSettings) -> list[PeriodicJob]:
    """The cleanup, every `cleanup_interval_seconds`."""
    return [PeriodicJob("cleanup", settings.cleanup_interval_seconds, _cleanup)]


async def reencrypt_documents(
    *, sessionmaker: async_sessionmaker[AsyncSession], vault: Vault, limit: int | None = None
) -> int:
    """Move every stored file not under the active key (or stored in clear) to the active key, one
    document per transaction; returns how many were moved. The replaced files are deleted after the
    commit (a crash leaves them as orphans for the cleanup job)."""
    active = vault.keyring.active_id
    if active is None:
        raise RuntimeError("re-encryption needs MIF_DOCUMENTS_ENCRYPTION_ENABLED=true and an active key")
    moved = 0
    while limit is None or moved < limit:
        async with sessionmaker() as session:
            async with session.begin():
                found = await repo.needing_rewrap(session, active_key_id=active, limit=1)
                if not found:
                    break
                document = found[0]
                old_key = document.storage_key
                kept = await vault.rewrap(storage_key=old_key, key_id=document.key_id, size=document.taille)
                document.storage_key, document.key_id = kept.storage_key, kept.key_id
            await vault.delete(old_key)
        moved += 1
    return moved
