"""Export jobs: `pending → generating → completed | failed → expired`.

A job is taken by one process at a time (`FOR UPDATE SKIP LOCKED`), written to a temporary file beside
its final name and renamed when complete, its progress saved as it goes. A process that dies mid-job stops
its heartbeat; the job is then taken again from the start. A finished file is deleted, and its job marked
`expired`, once `expire_le` has passed. Every end is announced (`reports.export.completed/failed.v1`) for
notifications to tell the requester.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import secrets
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import FastAPI

from mif_common.datetimes import now
from mif_common.events import add_event
from mif_common.jobs import PeriodicJob
from mif_reports import exports, rapports
from mif_reports.config import ReportsSettings
from mif_reports.events import ExportCompleted, ExportFailed
from mif_reports.models import ExportJob, StatutJob
from mif_reports.monthly_pdf import render_monthly_report
from mif_reports.questions import Question

logger = logging.getLogger(__name__)

# A `generating` job whose heartbeat is older than this is taken again (its process died).
STALE_AFTER = timedelta(minutes=2)


def question_of(parametres: dict[str, Any], fuseau: ZoneInfo) -> Question:
    """The scoped question stored with the job, back as a `Question`."""
    q = dict(parametres["question"])
    return Question(du=date.fromisoformat(q.pop("du")), au=date.fromisoformat(q.pop("au")), fuseau=fuseau, **q)


def stored_question(q: Question) -> dict[str, Any]:
    return {
        "du": q.du.isoformat(),
        "au": q.au.isoformat(),
        "pas": q.pas,
        "client_id": q.client_id,
        "equipement_id": q.equipement_id,
        "type_equipement": q.type_equipement,
        "localisation": q.localisation,
        "technicien_id": q.technicien_id,
        "type": q.type,
        "priorite": q.priorite,
        "rien": q.rien,
    }


async def _claim(app: FastAPI) -> int | None:
    async with app.state.sessionmaker() as session, session.begin():
        waiting = (
            sa.select(ExportJob.id)
            .where(
                sa.or_(
                    ExportJob.statut == StatutJob.pending.value,
                    sa.and_(ExportJob.statut == StatutJob.generating.value, ExportJob.battement < now() - STALE_AFTER),
                )
            )
            .order_by(ExportJob.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        job_id: int | None = await session.scalar(
            sa.update(ExportJob)
            .where(ExportJob.id == waiting)
            .values(statut=StatutJob.generating.value, commence_le=now(), battement=now(), progression=0)
            .returning(ExportJob.id)
        )
    return job_id


async def _progress(app: FastAPI, job_id: int, percent: int) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            sa.update(ExportJob).where(ExportJob.id == job_id).values(progression=min(99, percent), battement=now())
        )


async def _generate(app: FastAPI, job: ExportJob, path: Path) -> int:
    """Write the job's file at `path`; the number of rows (interventions for the monthly report)."""
    settings: ReportsSettings = app.state.settings
    fuseau = ZoneInfo(settings.fuseau)
    q = question_of(job.parametres, fuseau)
    options = exports.Settings(settings.taux_horaire, settings.minutes_disponibles_par_jour)
    async with app.state.sessionmaker() as session:
        if job.type == "rapport_mensuel":
            mois = date.fromisoformat(job.parametres["mois"])
            rapport = await rapports.rapport_mensuel(
                session,
                q,
                mois,
                taux_horaire=settings.taux_horaire,
                minutes_par_jour=settings.minutes_disponibles_par_jour,
            )
            with path.open("wb") as out:
                await asyncio.to_thread(render_monthly_report, rapport, out)
            return len(rapport.interventions)
        total = max(1, job.lignes or 1)
        columns, source = exports.pages(session, job.type, q, job.parametres.get("statut"), options)

        async def progress(rows: int) -> None:
            await _progress(app, job.id, rows * 100 // total)

        with path.open("wb") as out:
            return await exports.write_list(
                job.format, columns, source(), out, exports.TITRES[job.type], progress=progress
            )


async def run_one(app: FastAPI) -> bool:
    """One pass: take the oldest waiting job and make its file. True when there was one (look again)."""
    job_id = await _claim(app)
    if job_id is None:
        return False
    settings: ReportsSettings = app.state.settings
    async with app.state.sessionmaker() as session:
        job = await session.get(ExportJob, job_id)
    assert job is not None
    final = exports.part_path(settings.exports_dir, job.id, secrets.token_hex(8), job.format)
    partial = final.with_name(final.name + ".part")
    try:
        await asyncio.to_thread(settings.exports_dir.mkdir, parents=True, exist_ok=True)
        rows = await _generate(app, job, partial)
        partial.rename(final)
    except Exception as exc:
        logger.exception("export job %s failed", job_id)
        with contextlib.suppress(OSError):
            partial.unlink()
        await _finish_failed(app, job, f"{type(exc).__name__}: {exc}"[:500])
        return True
    finally:
        release_memory()
    await _finish_completed(app, job, final, rows)
    return True


def release_memory() -> None:
    """Give back what a job's rendering freed: glibc keeps freed heap in its arenas, so without a trim the
    process stays at its peak and the next job's peak starts from there (the 200 MB ceiling)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_LIBC = _glibc()


async def _finish_completed(app: FastAPI, job: ExportJob, path: Path, rows: int) -> None:
    settings: ReportsSettings = app.state.settings
    at = now()
    expires = at + timedelta(hours=settings.expiration_heures)
    name = exports.file_name(job.type, job.format, at.astimezone(ZoneInfo(settings.fuseau)).date())
    size = (await asyncio.to_thread(path.stat)).st_size
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            sa.update(ExportJob)
            .where(ExportJob.id == job.id)
            .values(
                statut=StatutJob.completed.value,
                progression=100,
                lignes=rows,
                fichier=path.name,
                nom_fichier=name,
                taille=size,
                termine_le=at,
                expire_le=expires,
                battement=at,
            )
        )
        await add_event(
            session,
            ExportCompleted(
                job_id=job.id,
                user_id=job.user_id,
                type=job.type,
                format=job.format,
                chemin=f"/api/v1/rapports/jobs/{job.id}",
                nom_fichier=name,
                lignes=rows,
                taille=size,
                expire_le=expires,
                occurred_at=at,
            ),
            subject=job.id,
        )


async def _finish_failed(app: FastAPI, job: ExportJob, reason: str) -> None:
    at = now()
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            sa.update(ExportJob)
            .where(ExportJob.id == job.id)
            .values(statut=StatutJob.failed.value, erreur=reason, termine_le=at, battement=at)
        )
        await add_event(
            session,
            ExportFailed(
                job_id=job.id,
                user_id=job.user_id,
                type=job.type,
                format=job.format,
                chemin=f"/api/v1/rapports/jobs/{job.id}",
                erreur=reason,
                occurred_at=at,
            ),
            subject=job.id,
        )


async def expire_files(app: FastAPI) -> bool:
    """One pass: files past their time deleted, their jobs `expired` (a job whose file is already gone,
    too: a restore or a manual clean-up never leaves a link to nothing)."""
    settings: ReportsSettings = app.state.settings
    async with app.state.sessionmaker() as session, session.begin():
        expired = (
            (
                await session.execute(
                    sa.update(ExportJob)
                    .where(ExportJob.statut == StatutJob.completed.value, ExportJob.expire_le <= now())
                    .values(statut=StatutJob.expired.value)
                    .returning(ExportJob.fichier)
                )
            )
            .scalars()
            .all()
        )
    for name in expired:
        if name:
            with contextlib.suppress(FileNotFoundError):
                (settings.exports_dir / name).unlink()
    return False


def periodic_jobs(settings: ReportsSettings) -> list[PeriodicJob]:
    return [
        PeriodicJob("export-jobs", settings.job_poll_interval_seconds, run_one),
        PeriodicJob("export-expiry", settings.expiry_interval_seconds, expire_files),
    ]
