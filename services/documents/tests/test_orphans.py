"""A file written without its row (a crash between the file write and the commit) is never served,
and the cleanup job removes it, and abandoned staged uploads, once older than the grace period."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.config import ServiceSettings
from mif_common.testing.polling import eventually
from mif_documents.jobs import CleanupReport, cleanup_once, periodic_jobs
from mif_documents.storage import TEMP_DIR_NAME
from mif_documents.testing import Headers, Known, Upload, pdf_bytes


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def file_of(storage_dir: Path, key: str) -> Path:
    return storage_dir / key[:2] / key[2:4] / key


def age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


@pytest.fixture
async def cleanup(db_session: AsyncSession, app: FastAPI) -> Callable[..., Awaitable[CleanupReport]]:
    await db_session.commit()
    sessionmaker = async_sessionmaker(
        bind=db_session.bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )

    async def run(grace: timedelta = timedelta(hours=1)) -> CleanupReport:
        return await cleanup_once(sessionmaker=sessionmaker, vault=app.state.vault, grace=grace)

    return run


async def test_a_file_without_a_row_is_never_served_and_is_swept_after_the_grace_period(
    client: httpx.AsyncClient,
    app: FastAPI,
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    db_session: AsyncSession,
    storage_dir: Path,
    cleanup: Callable[..., Awaitable[CleanupReport]],
) -> None:
    document = (await upload(await known_intervention(), manager, pdf_bytes())).json()
    kept_key = await db_session.scalar(text("SELECT storage_key FROM document WHERE id = :i"), {"i": document["id"]})
    assert isinstance(kept_key, str)
    # The crash: the file reached storage, the transaction never committed.
    orphan = await app.state.vault.storage.save(chunks(pdf_bytes()))
    # No row, so no link can reach it: a validly signed link to an id without a row is 404.
    last_id = await db_session.scalar(text("SELECT max(id) FROM document"))
    for guess in range(int(last_id) + 1, int(last_id) + 5):
        assert (await client.get(app.state.signer.path(guess))).status_code == 404
    listed = await client.get("/api/v1/documents", headers=manager)
    assert [d["id"] for d in listed.json()] == [document["id"]]

    young = await cleanup()
    assert young.orphans == 0 and file_of(storage_dir, orphan.key).exists()
    age(file_of(storage_dir, orphan.key), 2)
    age(file_of(storage_dir, kept_key), 2)
    swept = await cleanup()
    assert swept.orphans >= 1  # files of earlier tests' rolled-back uploads may be swept too
    assert not file_of(storage_dir, orphan.key).exists()
    assert file_of(storage_dir, kept_key).exists()  # a row still needs it
    assert (await client.get(document["path"])).status_code == 200


async def test_abandoned_staged_uploads_are_removed(
    app: FastAPI, storage_dir: Path, cleanup: Callable[..., Awaitable[CleanupReport]]
) -> None:
    stale = await app.state.vault.storage.stage()
    await stale.write(b"half an upload")
    await stale.finish()
    fresh = await app.state.vault.storage.stage()
    age(stale.path, 2)
    report = await cleanup()
    assert report.incomplete >= 1
    assert not stale.path.exists() and fresh.path.exists()
    await fresh.discard()
    assert list((storage_dir / TEMP_DIR_NAME).glob("*")) == []


async def test_the_job_runs_the_cleanup_periodically(app: FastAPI, storage_dir: Path) -> None:
    """The periodic job runs the same pass (here on the app's own, committing sessions, zero grace)."""
    orphan = await app.state.vault.storage.save(chunks(b"orphan"))
    settings = app.state.settings.model_copy(update={"orphan_grace_seconds": 0, "cleanup_interval_seconds": 60})
    original = app.state.settings
    app.state.settings = settings
    (cleanup,) = periodic_jobs(settings)
    task = asyncio.create_task(cleanup.run_forever(app))
    try:
        await eventually(lambda: not file_of(storage_dir, orphan.key).exists(), what="the orphan removed", within=5)
    finally:
        task.cancel()
        app.state.settings = original


@pytest.mark.parametrize(
    ("argv", "code", "said"),
    [
        (["cleanup"], 0, "orphan file(s)"),
        (["reencrypt"], 1, "re-encryption needs MIF_DOCUMENTS_ENCRYPTION_ENABLED=true"),
    ],
)
def test_operator_commands(
    mif_settings: ServiceSettings, tmp_path: Path, argv: list[str], code: int, said: str
) -> None:
    env = {
        **os.environ,
        "MIF_DOCUMENTS_DATABASE_URL": mif_settings.database_url,
        "MIF_DOCUMENTS_STORAGE_DIR": str(tmp_path),
        "MIF_ENVIRONMENT": "test",
    }
    done = subprocess.run(
        [sys.executable, "-m", "mif_documents.cli", *argv], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code, done.stderr
    assert said in done.stdout + done.stderr
