"""The reports service's reactions to other services' events (`handlers.py` calls them): the read model.

Interventions and their parts cost go through `aggregates` (old contribution out, new one in); equipment
statut changes rebuild that equipment's breakdown episodes; the other replicas keep names and filters.
Each fact carries what orders it (`occurred_at`, `version`, a movement id): an older one changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.replicas import Replica
from mif_reports import aggregates, pannes
from mif_reports.aggregates import Etat
from mif_reports.facts import (
    ClientFact,
    EquipementFact,
    InterventionFact,
    PartsCostedFact,
    PieceFact,
    StockMovedFact,
    TechnicienFact,
)
from mif_reports.models import (
    STATUTS_OUVERTS,
    ClientRef,
    EquipementRef,
    InterventionFait,
    PanneEpisode,
    PanneMois,
    PieceRef,
    StatutEquipement,
    TechnicienRef,
)


def _newer_version(table: sa.Table, excluded: object) -> sa.ColumnElement[bool]:
    return table.c.version < excluded.version  # type: ignore[attr-defined,no-any-return]


EQUIPEMENTS = Replica(
    EquipementRef,
    key="equipement_id",
    newer=_newer_version,
    merge={"cree_le": lambda table, excluded: sa.func.least(table.c.cree_le, excluded.cree_le)},
)
CLIENTS = Replica(ClientRef, key="client_id", newer=_newer_version)
TECHNICIENS = Replica(TechnicienRef, key="technicien_id", newer=_newer_version)
PIECES = Replica(PieceRef, key="piece_id", newer=_newer_version)


async def _locked_fait(session: AsyncSession, intervention_id: int) -> InterventionFait:
    """The intervention's row, created empty if new, locked until the transaction ends."""
    await session.execute(pg_insert(InterventionFait).values(intervention_id=intervention_id).on_conflict_do_nothing())
    fait = await session.scalar(
        sa.select(InterventionFait)
        .where(InterventionFait.intervention_id == intervention_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert fait is not None
    return fait


def _date_fin(fait: InterventionFait, fact: InterventionFact) -> datetime | None:
    """When it left the backlog: its closure; else, once cancelled or archived, the first time seen so."""
    if fact.statut in STATUTS_OUVERTS:
        return None
    if fact.date_cloture is not None:
        return fact.date_cloture
    return fait.date_fin or fact.occurred_at


def _opened_corrective(fenetre_start: Any, fenetre_end: Any, equipement_id: int, autre: int) -> Any:
    """Correctives on the equipment opened in (start, end], the cancelled ones excepted (a request cancelled
    was a mistake or a duplicate, not the fault coming back)."""
    f = InterventionFait
    return sa.and_(
        f.equipement_id == equipement_id,
        f.type == "corrective",
        f.intervention_id != autre,
        f.statut != "annulee",
        sa.or_(f.statut != "archivee", f.date_cloture.is_not(None)),
        f.date_creation > fenetre_start,
        f.date_creation <= fenetre_end,
    )


async def _followed_by_corrective(session: AsyncSession, fait: InterventionFait, fenetre: timedelta) -> bool:
    """Whether another corrective was opened on the same equipment within `fenetre` after its closure."""
    if fait.type != "corrective" or fait.date_cloture is None or fait.equipement_id is None:
        return False
    condition = _opened_corrective(
        fait.date_cloture, fait.date_cloture + fenetre, fait.equipement_id, fait.intervention_id
    )
    return bool(await session.scalar(sa.select(sa.literal(True)).where(condition).limit(1)))


def _repeat_key(fait: InterventionFait) -> tuple[object, ...] | None:
    """What makes this intervention count as the fault coming back on its equipment (None: it does not)."""
    if fait.type != "corrective" or fait.date_creation is None or fait.equipement_id is None:
        return None
    if fait.statut == "annulee" or (fait.statut == "archivee" and fait.date_cloture is None):
        return None
    return (fait.equipement_id, fait.date_creation)


async def _recheck_earlier_correctives(
    session: AsyncSession, fait: InterventionFait, was: tuple[object, ...] | None, fenetre: timedelta, fuseau: ZoneInfo
) -> None:
    """The correctives closed on the equipment within `fenetre` before this one was opened: when this one
    starts counting as a repeat they were not fixed the first time; when it stops (cancelled), each is
    checked again. Nothing to do when that did not change (most facts: assigned, started, closed)."""
    now_key = _repeat_key(fait)
    if now_key == was:
        return
    for key, counts in ((was, False), (now_key, True)):
        if key is None:
            continue
        equipement_id, created = key
        assert isinstance(created, datetime)
        earlier = (
            await session.scalars(
                sa.select(InterventionFait)
                .where(
                    InterventionFait.equipement_id == equipement_id,
                    InterventionFait.type == "corrective",
                    InterventionFait.intervention_id != fait.intervention_id,
                    # A new repeat can only turn `refaite` on; a repeat gone can only turn it off.
                    InterventionFait.refaite.is_(not counts),
                    InterventionFait.date_cloture < created,
                    InterventionFait.date_cloture >= created - fenetre,
                )
                .order_by(InterventionFait.intervention_id)
                .with_for_update()
            )
        ).all()
        for other in earlier:
            refaite = True if counts else await _followed_by_corrective(session, other, fenetre)
            if refaite != other.refaite:
                before = aggregates.contribution(Etat.of(other), fuseau)
                other.refaite = refaite
                after = aggregates.contribution(Etat.of(other), fuseau)
                await aggregates.add(session, aggregates.difference(before, after))


async def intervention_changed(
    session: AsyncSession, *, fact: InterventionFact, fenetre: timedelta, fuseau: ZoneInfo
) -> bool:
    """Apply the snapshot unless the row holds a later one; the sums follow. Returns whether applied."""
    fait = await _locked_fait(session, fact.intervention_id)
    if fait.occurred_at is not None and fact.occurred_at < fait.occurred_at:
        return False
    before = aggregates.contribution(Etat.of(fait), fuseau)
    was = _repeat_key(fait)
    fait.date_fin = _date_fin(fait, fact)
    if fact.equipement_id != fait.equipement_id or fait.type_equipement is None:
        # Once known it follows the equipment's own events (`_equipement_type_followed`), not this read.
        fait.type_equipement = await session.scalar(
            sa.select(EquipementRef.type).where(EquipementRef.equipement_id == fact.equipement_id)
        )
    fait.equipement_id = fact.equipement_id
    fait.client_id = fact.client_id
    fait.technicien_id = fact.technicien_id
    fait.type = fact.type
    fait.priorite = fact.priorite
    fait.statut = fact.statut
    fait.titre = fact.titre
    fait.planning_id = fact.planning_id
    # A publisher without the optional dates keeps what an earlier snapshot said (never a guess).
    fait.date_creation = fact.date_creation or fait.date_creation
    fait.date_limite = fact.date_limite
    fait.date_debut = fact.date_debut_travaux or fait.date_debut
    fait.date_cloture = fact.date_cloture
    fait.duree_reelle = fact.duree_reelle
    fait.occurred_at = fact.occurred_at
    fait.refaite = await _followed_by_corrective(session, fait, fenetre)
    await aggregates.add(session, aggregates.difference(before, aggregates.contribution(Etat.of(fait), fuseau)))
    await session.flush()
    await _recheck_earlier_correctives(session, fait, was, fenetre, fuseau)
    return True


async def parts_costed(session: AsyncSession, *, fact: PartsCostedFact, fuseau: ZoneInfo) -> bool:
    """inventory's parts cost of an intervention: the highest version wins."""
    fait = await _locked_fait(session, fact.intervention_id)
    # An equal version is the same event again; version 0 is what the rebuild read from inventory's API,
    # taken only while no event has said anything.
    if fact.version < fait.pieces_version or fact.version == fait.pieces_version != 0:
        return False
    before = aggregates.contribution(Etat.of(fait), fuseau)
    fait.cout_pieces = fact.cout_pieces
    fait.pieces_version = fact.version
    fait.pieces_lignes = [ligne.model_dump() for ligne in fact.lignes]
    await aggregates.add(session, aggregates.difference(before, aggregates.contribution(Etat.of(fait), fuseau)))
    return True


def _equipement_values(fact: EquipementFact, *, supprime: bool = False) -> dict[str, object]:
    return {
        "equipement_id": fact.equipement_id,
        "nom": fact.nom,
        "type": fact.type,
        "localisation": fact.localisation,
        "numero_serie": fact.numero_serie,
        "statut": fact.statut,
        "criticite": fact.criticite,
        "client_id": fact.client_id,
        "version": fact.version,
        "supprime": supprime,
        "cree_le": fact.updated_at,
    }


async def equipement_changed(
    session: AsyncSession, *, fact: EquipementFact, fuseau: ZoneInfo, supprime: bool = False
) -> bool:
    if await EQUIPEMENTS.upsert(session, _equipement_values(fact, supprime=supprime)) is None:
        return False
    await _equipement_type_followed(session, fact.equipement_id, fact.type, fuseau)
    return True


async def _equipement_type_followed(session: AsyncSession, equipement_id: int, type_: str, fuseau: ZoneInfo) -> None:
    """The monthly sums' equipment-type axis moved for the equipment's interventions whose fact has another
    type (the equipment was retyped, or its interventions arrived before it). Usually none."""
    faits = (
        await session.scalars(
            sa.select(InterventionFait)
            .where(
                InterventionFait.equipement_id == equipement_id,
                InterventionFait.type_equipement.is_distinct_from(type_),
            )
            .order_by(InterventionFait.intervention_id)
            .with_for_update()
        )
    ).all()
    for fait in faits:
        before = aggregates.contribution(Etat.of(fait), fuseau)
        fait.type_equipement = type_
        await aggregates.add(session, aggregates.difference(before, aggregates.contribution(Etat.of(fait), fuseau)))


async def equipement_statut_changed(session: AsyncSession, *, fact: EquipementFact, fuseau: ZoneInfo) -> None:
    """`status_changed`: the equipment's snapshot, and the change for its breakdown episodes."""
    if await EQUIPEMENTS.upsert(session, _equipement_values(fact)) is not None:
        await _equipement_type_followed(session, fact.equipement_id, fact.type, fuseau)
    await record_statut(
        session,
        equipement_id=fact.equipement_id,
        at=fact.updated_at,
        statut=fact.statut,
        ancien=fact.ancien_statut,
        fuseau=fuseau,
    )


async def record_statut(
    session: AsyncSession, *, equipement_id: int, at: datetime, statut: str, ancien: str | None, fuseau: ZoneInfo
) -> None:
    """Record the change (once per instant) and rebuild the equipment's breakdown episodes, and their sums
    per month, from all of its changes in time order, so that a change arriving late lands in its place."""
    # One rebuild at a time per equipment (two replicas of the service may take two of its events).
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(7_301, equipement_id)))
    await session.execute(
        pg_insert(StatutEquipement)
        .values(equipement_id=equipement_id, occurred_at=at, statut=statut, ancien_statut=ancien)
        .on_conflict_do_nothing()
    )
    changes = (
        await session.execute(
            sa.select(StatutEquipement.occurred_at, StatutEquipement.statut)
            .where(StatutEquipement.equipement_id == equipement_id)
            .order_by(StatutEquipement.occurred_at)
        )
    ).all()
    episodes: list[dict[str, object]] = []
    for occurred_at, changed_to in changes:
        en_panne = bool(episodes) and episodes[-1]["fin"] is None
        if changed_to == "panne" and not en_panne:
            episodes.append({"equipement_id": equipement_id, "debut": occurred_at, "fin": None})
        elif changed_to != "panne" and en_panne:
            episodes[-1]["fin"] = occurred_at
    await session.execute(sa.delete(PanneEpisode).where(PanneEpisode.equipement_id == equipement_id))
    await session.execute(sa.delete(PanneMois).where(PanneMois.equipement_id == equipement_id))
    if episodes:
        await session.execute(pg_insert(PanneEpisode).values(episodes))
        closed = [(cast(datetime, e["debut"]), cast(datetime, e["fin"])) for e in episodes if e["fin"] is not None]
        if months := pannes.per_month(closed, fuseau):
            rows = [
                {"equipement_id": equipement_id, "mois": mois, "pannes": n, "secondes_arret": secondes}
                for mois, (n, secondes) in sorted(months.items())
            ]
            await session.execute(pg_insert(PanneMois).values(rows))


async def client_changed(session: AsyncSession, *, fact: ClientFact) -> bool:
    values = {
        "client_id": fact.client_id,
        "nom": fact.nom_entreprise,
        "ville": fact.ville,
        "is_active": fact.is_active,
        "version": fact.version,
    }
    return await CLIENTS.upsert(session, values) is not None


async def technicien_changed(session: AsyncSession, *, fact: TechnicienFact) -> bool:
    values = {
        "technicien_id": fact.technicien_id,
        "user_id": fact.user_id,
        "nom": fact.full_name,
        "is_active": fact.is_active,
        "version": fact.version,
    }
    return await TECHNICIENS.upsert(session, values) is not None


async def piece_changed(session: AsyncSession, *, fact: PieceFact, supprime: bool = False) -> bool:
    values = {
        "piece_id": fact.piece_id,
        "reference": fact.reference,
        "nom": fact.nom,
        "categorie": fact.categorie,
        "unite": fact.unite,
        "prix_unitaire": fact.prix_unitaire,
        "stock_minimum": fact.stock_minimum,
        "stock_maximum": fact.stock_maximum,
        "version": fact.version,
        "supprime": supprime,
    }
    return await PIECES.upsert(session, values) is not None


async def stock_moved(session: AsyncSession, *, fact: StockMovedFact) -> None:
    """The part's available stock after its newest movement (a movement id orders them)."""
    insert = pg_insert(PieceRef).values(
        piece_id=fact.piece_id, disponible=fact.disponible_total, mouvement_id=fact.mouvement_id
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[PieceRef.piece_id],
            set_={"disponible": insert.excluded.disponible, "mouvement_id": insert.excluded.mouvement_id},
            where=PieceRef.mouvement_id < insert.excluded.mouvement_id,
        )
    )
