"""HTTP routes of the exports (`/api/v1/rapports`): one request shape for every export; small ones are
answered with the file, large ones become a job (202) fetched later through a signed, expiring link."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, field_validator

from mif_common.auth import CurrentPrincipal, Role
from mif_common.bodies import RefId, Strict
from mif_common.datetimes import now
from mif_common.db import ReadSession, Session
from mif_common.errors import Conflict, Forbidden, NotFound, Unprocessable
from mif_common.params import EntityId
from mif_common.signed_links import make_token, read_token
from mif_reports import exports, listes, rapports
from mif_reports.config import ReportsSettings
from mif_reports.jobs import stored_question
from mif_reports.models import ExportJob, StatutJob
from mif_reports.monthly_pdf import render_monthly_report
from mif_reports.owners import DocumentsClient, InterventionsClient, PlanningClient
from mif_reports.scope import Filtres, question
from mif_reports.tabular import csv_chunks
from mif_reports.work_order_pdf import render_work_order

rapports_router = APIRouter(prefix="/api/v1/rapports", tags=["rapports"])

Interventions = Annotated[InterventionsClient, Depends(InterventionsClient.for_request)]
Documents = Annotated[DocumentsClient, Depends(DocumentsClient.for_request)]
Planning = Annotated[PlanningClient, Depends(PlanningClient.for_request)]
MAX_PLANS = 5_000


class FiltresExport(Strict):
    """The period (on the interventions' creation date for the interventions list; the KPIs' period for
    `kpis`) and filters; the caller's scope is applied on top."""

    du: date | None = None
    au: date | None = None
    pas: Literal["jour", "semaine", "mois"] = "mois"
    client_id: RefId | None = None
    equipement_id: RefId | None = None
    type_equipement: str | None = Field(default=None, min_length=1, max_length=255)
    localisation: str | None = Field(default=None, min_length=1, max_length=255)
    technicien_id: RefId | None = None
    type: Literal["corrective", "preventive", "ameliorative", "diagnostic"] | None = None
    priorite: Literal["urgente", "haute", "normale", "basse", "programmee"] | None = None
    statut: Literal["ouverte", "affectee", "en_cours", "en_attente", "cloturee", "annulee", "archivee"] | None = None


class ExportDemande(Strict):
    rapport: exports.Rapport = Field(
        description="A list (`interventions`, `equipements`, `pieces`, `plans`, `kpis`: csv or xlsx) or a PDF "
        "report (`bon_intervention` with `intervention_id`, `rapport_mensuel` with `mois` and, for a manager, "
        "`filtres.client_id`)."
    )
    format: exports.Format
    filtres: FiltresExport = Field(default_factory=FiltresExport)
    intervention_id: RefId | None = None
    mois: str | None = Field(default=None, description="`rapport_mensuel`: the month, `YYYY-MM`.")
    asynchrone: bool = Field(
        default=False,
        description="Make it a job whatever its size (the work order and the plans list are always answered at once).",
    )

    @field_validator("mois")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(19[7-9]\d|2[01]\d\d)-(0[1-9]|1[0-2])", value):
            raise ValueError("must be a month written YYYY-MM")
        return value


class JobOut(BaseModel):
    id: int
    rapport: str
    format: str
    statut: StatutJob
    progression: int = Field(description="Percent done.")
    lignes: int | None = Field(description="Rows (interventions for the monthly report): estimated until done.")
    nom_fichier: str | None
    taille: int | None = Field(description="Bytes, once completed.")
    erreur: str | None = Field(description="Why it failed.")
    cree_le: Any
    termine_le: Any
    expire_le: Any
    lien: str | None = Field(description="Completed: the file, signed, usable without Authorization until `expire_le`.")


class JobIntrouvable(NotFound):
    slug = "job-not-found"


class FichierIntrouvable(NotFound):
    slug = "file-not-found"


def _settings(request: Request) -> ReportsSettings:
    settings: ReportsSettings = request.app.state.settings
    return settings


def _job_out(request: Request, job: ExportJob) -> JobOut:
    lien = None
    if job.statut == StatutJob.completed.value and job.expire_le is not None:
        ttl = int((job.expire_le - now()).total_seconds())
        if ttl > 0:
            lien = f"/api/v1/rapports/fichiers/{make_token(request.app.state.link_signer, job.id, ttl)}"
    return JobOut(
        id=job.id,
        rapport=job.type,
        format=job.format,
        statut=StatutJob(job.statut),
        progression=job.progression,
        lignes=job.lignes,
        nom_fichier=job.nom_fichier,
        taille=job.taille,
        erreur=job.erreur,
        cree_le=job.cree_le,
        termine_le=job.termine_le,
        expire_le=job.expire_le,
        lien=lien,
    )


def _attachment(content: bytes, format_: str, name: str) -> Response:
    return Response(
        content,
        media_type=exports.MEDIA[format_],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@rapports_router.post(
    "/exports",
    summary="Export a list (CSV, XLSX) or a PDF report: the file at once, or a job for a large one",
    responses={
        200: {"description": "The file (small exports).", "content": {m: {} for m in set(exports.MEDIA.values())}},
        202: {"description": "A job (large exports): follow `Location`.", "model": JobOut},
    },
    status_code=200,
)
async def export(
    request: Request,
    demande: ExportDemande,
    session: Session,
    principal: CurrentPrincipal,
    interventions: Interventions,
    documents: Documents,
    planning: Planning,
) -> Response:
    settings = _settings(request)
    fuseau = ZoneInfo(settings.fuseau)
    exports.check_format(demande.rapport, demande.format)
    exports.refuse_for_clients(demande.rapport, principal.role is Role.client)
    f = demande.filtres
    filtres = Filtres(
        f.du,
        f.au,
        f.pas,
        f.client_id,
        f.equipement_id,
        f.type_equipement,
        f.localisation,
        f.technicien_id,
        f.type,
        f.priorite,
    )
    q = await question(session, principal, filtres, fuseau)
    options = exports.Settings(settings.taux_horaire, settings.minutes_disponibles_par_jour)
    today = now().astimezone(fuseau).date()
    mois = date.fromisoformat(demande.mois + "-01") if demande.mois else None

    if demande.rapport == "bon_intervention":
        if demande.intervention_id is None:
            raise Unprocessable("`bon_intervention` needs `intervention_id`.")
        bon = await rapports.bon_intervention(
            session,
            demande.intervention_id,
            interventions=interventions,
            documents=documents,
            taux_horaire=settings.taux_horaire,
        )
        pdf = await asyncio.to_thread(render_work_order, bon)
        return _attachment(pdf, "pdf", exports.file_name("bon-intervention", "pdf", today, f"-{bon.numero}"))

    if demande.rapport == "rapport_mensuel":
        if principal.role is Role.technicien:
            raise Forbidden("The monthly client report is for managers and the client's own users.")
        if mois is None or q.client_id is None:
            raise Unprocessable("`rapport_mensuel` needs `mois` (YYYY-MM) and, for a manager, `filtres.client_id`.")
        estimate = await exports.count(session, "rapport_mensuel", q, None, mois)
        if estimate > settings.seuil_job_lignes // 10 or demande.asynchrone:
            return await _new_job(request, session, principal, demande, q, mois, estimate)
        rapport = await rapports.rapport_mensuel(
            session, q, mois, taux_horaire=settings.taux_horaire, minutes_par_jour=settings.minutes_disponibles_par_jour
        )
        out = io.BytesIO()
        await asyncio.to_thread(render_monthly_report, rapport, out)
        return _attachment(
            out.getvalue(), "pdf", exports.file_name("rapport-mensuel", "pdf", today, f"-{demande.mois}")
        )

    if demande.rapport == "plans":
        rows: list[dict[str, Any]] = []
        while len(rows) < MAX_PLANS:
            page = await planning.plans(limit=500, offset=len(rows))
            rows.extend(listes.plan_row(p) for p in page)
            if len(page) < 500:
                break
        content = await _list_bytes(demande.format, listes.PLANS.colonnes, rows, "Plans de maintenance")
        return _attachment(content, demande.format, exports.file_name("plans", demande.format, today))

    estimate = await exports.count(session, demande.rapport, q, f.statut, None)
    if estimate > settings.seuil_job_lignes or demande.asynchrone:
        return await _new_job(request, session, principal, demande, q, None, estimate)
    columns, source = exports.pages(session, demande.rapport, q, f.statut, options)
    content, _ = await exports.list_bytes(demande.format, columns, source(), exports.TITRES[demande.rapport])
    return _attachment(content, demande.format, exports.file_name(demande.rapport, demande.format, today))


async def _list_bytes(format_: str, columns: Any, rows: list[dict[str, Any]], titre: str) -> bytes:
    async def one_page() -> exports.Pages:
        yield rows

    if format_ == "csv":
        return b"".join(csv_chunks(columns, rows))
    content, _ = await exports.list_bytes(format_, columns, one_page(), titre)
    return content


async def _new_job(
    request: Request, session: Any, principal: Any, demande: ExportDemande, q: Any, mois: date | None, estimate: int
) -> Response:
    """A pending job; `estimate`: the rows counted to decide it (its progress is measured against it)."""
    job = ExportJob(
        user_id=principal.user_id,
        role=principal.role.value,
        client_id=principal.client_id,
        type=demande.rapport,
        format=demande.format,
        parametres={
            "question": stored_question(q),
            "statut": demande.filtres.statut,
            "mois": mois.isoformat() if mois else None,
        },
        statut=StatutJob.pending.value,
        lignes=estimate,
    )
    session.add(job)
    await session.flush()
    await session.refresh(job)
    body = _job_out(request, job)
    await session.commit()
    return Response(
        body.model_dump_json(),
        status_code=202,
        media_type="application/json",
        headers={"Location": f"/api/v1/rapports/jobs/{job.id}"},
    )


def _visible(principal: Any) -> Any:
    """Managers see every job; anybody else its own."""
    if principal.is_manager:
        return sa.true()
    return ExportJob.user_id == principal.user_id


@rapports_router.get("/jobs", response_model=list[JobOut], summary="Export jobs (yours; a manager: all), newest first")
async def list_jobs(request: Request, session: ReadSession, principal: CurrentPrincipal) -> list[JobOut]:
    jobs = (
        await session.scalars(sa.select(ExportJob).where(_visible(principal)).order_by(ExportJob.id.desc()).limit(200))
    ).all()
    return [_job_out(request, job) for job in jobs]


async def _job(session: Any, job_id: int, principal: Any) -> ExportJob:
    job = await session.scalar(sa.select(ExportJob).where(ExportJob.id == job_id, _visible(principal)))
    if job is None:
        raise JobIntrouvable(f"No export job {job_id} of yours.")
    return job  # type: ignore[no-any-return]


@rapports_router.get("/jobs/{job_id}", response_model=JobOut, summary="One export job: its status, progress and link")
async def get_job(request: Request, job_id: EntityId, session: ReadSession, principal: CurrentPrincipal) -> JobOut:
    return _job_out(request, await _job(session, job_id, principal))


class JobEnCours(Conflict):
    slug = "job-running"


@rapports_router.delete("/jobs/{job_id}", status_code=204, summary="Delete a finished export job and its file")
async def delete_job(request: Request, job_id: EntityId, session: Session, principal: CurrentPrincipal) -> Response:
    job = await _job(session, job_id, principal)
    if job.statut in (StatutJob.pending.value, StatutJob.generating.value):
        raise JobEnCours(f"Export job {job_id} is {job.statut}: delete it once it has ended.")
    if job.fichier:
        (_settings(request).exports_dir / job.fichier).unlink(missing_ok=True)
    await session.delete(job)
    await session.commit()
    return Response(status_code=204)


@rapports_router.get(
    "/fichiers/{token}",
    summary="A finished export's file, through its signed link (no Authorization needed)",
    response_class=FileResponse,
    responses={200: {"content": {m: {} for m in set(exports.MEDIA.values())}}},
)
async def fichier(request: Request, token: str, session: ReadSession) -> Response:
    job_id = read_token(request.app.state.link_signer, token)
    job = await session.get(ExportJob, job_id) if job_id is not None else None
    settings = _settings(request)
    if (
        job is None
        or job.statut != StatutJob.completed.value
        or job.fichier is None
        or job.expire_le is None
        or job.expire_le <= now()
    ):
        raise FichierIntrouvable("No such file, or its link has expired.")
    path = settings.exports_dir / job.fichier
    if not path.is_file():
        raise FichierIntrouvable("No such file, or its link has expired.")
    return FileResponse(
        path,
        media_type=exports.MEDIA[job.format],
        filename=job.nom_fichier or path.name,
        content_disposition_type="attachment",
    )
