"""Rebuild the read model from scratch on a running suite, through the owners' public APIs (paged):

    python -m mif_reports.rebuild [--gateway http://127.0.0.1:8000] [--email E --password P]

Signs in through the gateway as an administrator (`MIF_ADMIN_EMAIL` / `MIF_ADMIN_PASSWORD` by default),
empties the read model (export jobs are kept), then reads clients, equipment and their statut histories,
technicians, parts and interventions page by page and writes them as the events would have. The service
may keep running: an event arriving meanwhile is applied by the same rules (newest snapshot wins; what the
APIs answer is stored with version 0, so any later event wins over it). Interrupted (Ctrl-C, a failure),
it says how far it got; run it again to start over.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.db import make_engine, make_sessionmaker
from mif_reports import replicas
from mif_reports.config import ReportsSettings
from mif_reports.facts import (
    ClientFact,
    EquipementFact,
    InterventionFact,
    PartsCostedFact,
    PieceFact,
    TechnicienFact,
)
from mif_reports.models import (
    ClientRef,
    EquipementRef,
    InterventionFait,
    PanneEpisode,
    PanneMois,
    PieceRef,
    StatutEquipement,
    TechnicienRef,
    agregat_jour,
    agregat_jour_global,
    agregat_mois,
    agregat_paire_mois,
    agregat_total_jour,
    agregat_total_mois,
)

PAGE = 500
READ_MODEL: tuple[Any, ...] = (
    agregat_jour,
    agregat_jour_global,
    agregat_mois,
    agregat_total_jour,
    agregat_total_mois,
    agregat_paire_mois,
    InterventionFait.__table__,
    StatutEquipement.__table__,
    PanneEpisode.__table__,
    PanneMois.__table__,
    EquipementRef.__table__,
    ClientRef.__table__,
    TechnicienRef.__table__,
    PieceRef.__table__,
)


@dataclass
class Avancement:
    """What has been written so far, per kind (for the message when interrupted)."""

    faits: dict[str, int] = field(default_factory=dict)
    totaux: dict[str, int] = field(default_factory=dict)

    def resume(self) -> str:
        return ", ".join(f"{k} {self.faits.get(k, 0)}/{self.totaux.get(k, '?')}" for k in self.totaux) or "nothing"


async def pages(http: httpx.AsyncClient, path: str, total: dict[str, int], kind: str) -> AsyncIterator[list[Any]]:
    offset = 0
    while True:
        response = await http.get(path, params={"limit": PAGE, "offset": offset})
        response.raise_for_status()
        total[kind] = int(response.headers.get("x-total-count", total.get(kind, 0)))
        page = response.json()
        if not page:
            return
        yield page
        offset += len(page)
        if len(page) < PAGE:
            return


async def rebuild(
    http: httpx.AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: ReportsSettings,
    progress: Progress,
    avancement: Avancement,
) -> None:
    fenetre = timedelta(days=settings.premiere_resolution_jours)
    fuseau = ZoneInfo(settings.fuseau)
    async with sessionmaker() as session, session.begin():
        for table in READ_MODEL:
            await session.execute(sa.delete(table))

    async def each(kind: str, path: str, write: Callable[[AsyncSession, dict[str, Any]], Any]) -> None:
        task = progress.add_task(kind, total=None)
        async for page in pages(http, path, avancement.totaux, kind):
            progress.update(task, total=avancement.totaux[kind])
            async with sessionmaker() as session, session.begin():
                for row in page:
                    await write(session, row)
            avancement.faits[kind] = avancement.faits.get(kind, 0) + len(page)
            progress.update(task, completed=avancement.faits[kind])

    async def client(session: AsyncSession, row: dict[str, Any]) -> None:
        fact = ClientFact(
            client_id=row["id"],
            nom_entreprise=row["nom_entreprise"],
            ville=row.get("ville"),
            is_active=row.get("is_active", True),
            version=0,
        )
        await replicas.client_changed(session, fact=fact)

    equipment_ids: list[int] = []

    async def equipement(session: AsyncSession, row: dict[str, Any]) -> None:
        fact = EquipementFact.model_validate(
            {**row, "equipement_id": row["id"], "version": 0, "updated_at": row["date_creation"]}
        )
        await replicas.equipement_changed(session, fact=fact, fuseau=fuseau)
        equipment_ids.append(row["id"])

    async def technicien(session: AsyncSession, row: dict[str, Any]) -> None:
        user = row.get("user") or {}
        fact = TechnicienFact(
            technicien_id=row["id"],
            user_id=row["user_id"],
            is_active=row["is_active"],
            version=0,
            full_name=user.get("full_name") or user.get("username") or f"Technicien {row['id']}",
        )
        await replicas.technicien_changed(session, fact=fact)

    async def piece(session: AsyncSession, row: dict[str, Any]) -> None:
        await replicas.piece_changed(
            session, fact=PieceFact.model_validate({**row, "piece_id": row["id"], "version": 0})
        )

    costed: list[int] = []

    async def intervention(session: AsyncSession, row: dict[str, Any]) -> None:
        fact = InterventionFact.model_validate(
            {**row, "intervention_id": row["id"], "occurred_at": row["date_modification"]}
        )
        await replicas.intervention_changed(session, fact=fact, fenetre=fenetre, fuseau=fuseau)
        if row.get("cout_pieces"):
            costed.append(row["id"])

    await each("clients", "/api/v1/clients", client)
    await each("équipements", "/api/v1/equipements", equipement)
    await each("techniciens", "/api/v1/techniciens", technicien)
    await each("pièces", "/api/v1/pieces", piece)
    await each("interventions", "/api/v1/interventions", intervention)

    task = progress.add_task("historiques de statut", total=len(equipment_ids))
    avancement.totaux["historiques"] = len(equipment_ids)
    for equipement_id in equipment_ids:
        response = await http.get(f"/api/v1/equipements/{equipement_id}/historique-statut", params={"limit": PAGE})
        response.raise_for_status()
        async with sessionmaker() as session, session.begin():
            for change in response.json():
                await replicas.record_statut(
                    session,
                    equipement_id=equipement_id,
                    at=datetime.fromisoformat(change["horodatage"]),
                    statut=change["nouveau_statut"],
                    ancien=change["ancien_statut"],
                    fuseau=fuseau,
                )
        avancement.faits["historiques"] = avancement.faits.get("historiques", 0) + 1
        progress.update(task, advance=1)

    task = progress.add_task("pièces des interventions", total=len(costed))
    avancement.totaux["pièces des interventions"] = len(costed)
    for intervention_id in costed:
        response = await http.get(f"/api/v1/stock/interventions/{intervention_id}/pieces")
        response.raise_for_status()
        body = response.json()
        lignes = [{**ligne, "quantite": ligne["consommee"]} for ligne in body["lignes"] if ligne["consommee"]]
        async with sessionmaker() as session, session.begin():
            fact = PartsCostedFact(
                intervention_id=intervention_id, cout_pieces=body["cout_pieces"], lignes=lignes, version=0
            )
            await replicas.parts_costed(session, fact=fact, fuseau=fuseau)
        avancement.faits["pièces des interventions"] = avancement.faits.get("pièces des interventions", 0) + 1
        progress.update(task, advance=1)


async def sign_in(http: httpx.AsyncClient, email: str, password: str) -> None:
    response = await http.post("/api/v1/auth/login", data={"username": email, "password": password})
    if response.status_code != 200:
        raise SystemExit(f"Sign-in refused ({response.status_code}): {response.text[:200]}")
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"


async def main_async(gateway: str, email: str, password: str) -> int:
    settings = ReportsSettings()
    engine = make_engine(settings.database_url, schema=settings.db_schema, pool_size=2)
    sessionmaker = make_sessionmaker(engine, source=settings.service_name)
    avancement = Avancement()
    columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        async with httpx.AsyncClient(base_url=gateway, timeout=60.0) as http:
            await sign_in(http, email, password)
            with Progress(*columns) as progress:
                await rebuild(http, sessionmaker, settings, progress, avancement)
    except (Exception, asyncio.CancelledError) as exc:
        print(f"Interrupted ({type(exc).__name__}: {exc}) after: {avancement.resume()}.", file=sys.stderr)
        print("The read model is partial; run the command again to start over.", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"Read model rebuilt: {avancement.resume()}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mif_reports.rebuild", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gateway", default=os.environ.get("MIF_REPORTS_GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--email", default=os.environ.get("MIF_ADMIN_EMAIL", "admin@mif.ma"))
    parser.add_argument("--password", default=os.environ.get("MIF_ADMIN_PASSWORD"))
    args = parser.parse_args(argv)
    if not args.password:
        parser.error("--password (or MIF_ADMIN_PASSWORD) is required")
    try:
        return asyncio.run(main_async(args.gateway, args.email, args.password))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
