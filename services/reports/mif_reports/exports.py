"""Building an export's file: the rows of a list or a PDF report, written as CSV, XLSX or PDF.

The same code answers straight away (small exports, built in memory) and in a job (large ones, written to
a file under `exports_dir` page by page, the writer in a thread fed by a bounded queue so that neither the
event loop nor the memory holds more than a few pages).
"""

from __future__ import annotations

import asyncio
import io
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.errors import Forbidden, Unprocessable
from mif_reports import kpis, listes, rapports
from mif_reports.questions import Question, buckets
from mif_reports.tabular import Column, csv_chunks, write_xlsx

Rapport = Literal["interventions", "equipements", "pieces", "plans", "kpis", "bon_intervention", "rapport_mensuel"]
Format = Literal["csv", "xlsx", "pdf"]
LISTS: frozenset[str] = frozenset({"interventions", "equipements", "pieces", "plans", "kpis"})
PDFS: frozenset[str] = frozenset({"bon_intervention", "rapport_mensuel"})
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
TITRES = {
    "interventions": "Interventions",
    "equipements": "Équipements",
    "pieces": "Pièces détachées",
    "plans": "Plans de maintenance",
    "kpis": "Indicateurs",
    "bon_intervention": "Bon d'intervention",
    "rapport_mensuel": "Rapport mensuel",
}

Pages = AsyncIterator[list[dict[str, Any]]]
Progress = Callable[[int], Awaitable[None]]


def check_format(rapport: str, format_: str) -> None:
    if rapport in LISTS and format_ not in ("csv", "xlsx"):
        raise Unprocessable(f"The list `{rapport}` is exported as `csv` or `xlsx`.")
    if rapport in PDFS and format_ != "pdf":
        raise Unprocessable(f"`{rapport}` is a PDF report: `format` must be `pdf`.")


@dataclass(frozen=True, slots=True)
class Settings:
    taux_horaire: int
    minutes_par_jour: int


async def kpi_rows(session: AsyncSession, q: Question, settings: Settings) -> list[dict[str, Any]]:
    """One row per bucket with the main KPIs side by side."""
    mttr = await kpis.mttr(session, q)
    sla = await kpis.sla(session, q)
    preventive = await kpis.conformite_preventive(session, q)
    ftf = await kpis.premiere_resolution(session, q)
    backlog = await kpis.backlog(session, q)
    costs = await kpis.couts(session, q, taux_horaire=settings.taux_horaire, par=None)
    rows = []
    for i, b in enumerate(buckets(q)):
        rows.append(
            {
                "periode": b,
                "cloturees": mttr["series"][i]["cloturees"],
                "mttr_travaux_minutes": mttr["series"][i]["mttr_travaux_minutes"],
                "mttr_resolution_minutes": mttr["series"][i]["mttr_resolution_minutes"],
                "sla": sla["series"][i]["valeur"],
                "conformite_preventive": preventive["series"][i]["valeur"],
                "premiere_resolution": ftf["series"][i]["valeur"],
                "backlog": backlog["series"][i]["valeur"],
                "main_oeuvre": costs["series"][i]["main_oeuvre"],
                "pieces": costs["series"][i]["pieces"],
                "total": costs["series"][i]["total"],
            }
        )
    return rows


async def _one_page(rows: list[dict[str, Any]]) -> Pages:
    yield rows


def pages(
    session: AsyncSession, rapport: str, q: Question, statut: str | None, settings: Settings
) -> tuple[Sequence[Column], Callable[[], Pages]]:
    """The columns of a list and a way to iterate its pages (not `plans`: planning answers those)."""
    liste = listes.LISTES[rapport]
    if rapport == "interventions":
        return liste.colonnes, lambda: listes.interventions(session, q, statut, taux_horaire=settings.taux_horaire)
    if rapport == "equipements":
        return liste.colonnes, lambda: listes.equipements(session, q)
    if rapport == "pieces":
        return liste.colonnes, lambda: listes.pieces(session)

    async def kpi_pages() -> Pages:
        yield await kpi_rows(session, q, settings)

    return liste.colonnes, kpi_pages


async def count(session: AsyncSession, rapport: str, q: Question, statut: str | None, mois: date | None) -> int:
    """How many rows (lists) or interventions (the monthly report) the export holds: what decides a job."""
    if rapport == "interventions":
        return await listes.count_interventions(session, q, statut)
    if rapport == "equipements":
        return await listes.count_equipements(session, q)
    if rapport == "pieces":
        return await listes.count_pieces(session)
    if rapport == "rapport_mensuel" and mois is not None:
        return await rapports.count_month(session, q, mois)
    return 0


def refuse_for_clients(rapport: str, is_client: bool) -> None:
    if is_client and rapport in ("pieces", "plans"):
        raise Forbidden("Client users export their interventions, equipment, KPIs and reports; not this list.")


# --- writing ---------------------------------------------------------------------------------------------


_END = object()


def _drain(q: queue.Queue[object]) -> Iterator[dict[str, Any]]:
    while True:
        page = q.get()
        if page is _END:
            return
        assert isinstance(page, list)
        yield from page


def _write(format_: str, columns: Sequence[Column], rows: Iterator[dict[str, Any]], out: IO[bytes], titre: str) -> int:
    if format_ == "xlsx":
        return write_xlsx(columns, rows, cast(BinaryIO, out), titre_feuille=titre[:31], titre=titre)
    written = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal written
        for row in rows:
            written += 1
            yield row

    for chunk in csv_chunks(columns, counted()):
        out.write(chunk)
    return written


def _put(pending: queue.Queue[object], item: object, writer_done: threading.Event) -> bool:
    """Hand `item` to the writer; False if the writer has stopped (failed) and will never take it."""
    while not writer_done.is_set():
        try:
            pending.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


async def write_list(
    format_: str, columns: Sequence[Column], source: Pages, out: IO[bytes], titre: str, progress: Progress | None = None
) -> int:
    """Write every page of `source` to `out` in a thread; the number of rows written."""
    pending: queue.Queue[object] = queue.Queue(maxsize=4)
    writer_done = threading.Event()

    def write() -> int:
        try:
            return _write(format_, columns, _drain(pending), out, titre)
        finally:
            writer_done.set()

    writer = asyncio.create_task(asyncio.to_thread(write))
    fetched = 0
    try:
        async for page in source:
            fetched += len(page)
            if not await asyncio.to_thread(_put, pending, page, writer_done):
                break  # the writer failed: its exception is raised below
            if progress is not None:
                await progress(fetched)
    finally:
        await asyncio.to_thread(_put, pending, _END, writer_done)
    return await writer


async def list_bytes(format_: str, columns: Sequence[Column], source: Pages, titre: str) -> tuple[bytes, int]:
    out = io.BytesIO()
    rows = await write_list(format_, columns, source, out, titre)
    return out.getvalue(), rows


def file_name(rapport: str, format_: str, today: date, suffix: str = "") -> str:
    return f"{rapport}{suffix}-{today.isoformat()}.{format_}"


def part_path(directory: Path, job_id: int, token: str, format_: str) -> Path:
    return directory / f"{job_id}-{token}.{format_}"
