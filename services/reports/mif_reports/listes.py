"""The lists reports exports, read from its own read model: their columns (French titles, typed) and their
rows, fetched in pages by key so that a 100,000-row export never holds more than one page in memory.

Scope as for the KPIs: a client user gets its organisation's rows, a technician its own interventions
(every equipment and part: technicians read them all, DOMAIN.md §1), a manager everything. Plans have no
snapshot events: planning's own list answers them, as the caller (exports_api).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_reports.models import ClientRef, EquipementRef, InterventionFait, PieceRef, TechnicienRef
from mif_reports.questions import Question, dimension_terms, equipement_filter
from mif_reports.tabular import Column

PAGE = 2_000


@dataclass(frozen=True, slots=True)
class Liste:
    nom: str
    colonnes: Sequence[Column]


INTERVENTIONS = Liste(
    "interventions",
    (
        Column("id", "N°", "int", 8),
        Column("titre", "Titre", "text", 40),
        Column("type", "Type", "text", 13),
        Column("priorite", "Priorité", "text", 11),
        Column("statut", "Statut", "text", 12),
        Column("equipement", "Équipement", "text", 28),
        Column("client", "Client", "text", 24),
        Column("technicien", "Technicien", "text", 22),
        Column("date_creation", "Créée le", "datetime", 17),
        Column("date_limite", "Échéance", "datetime", 17),
        Column("date_debut", "Début des travaux", "datetime", 17),
        Column("date_cloture", "Clôturée le", "datetime", 17),
        Column("duree_reelle", "Temps passé (min)", "minutes", 12),
        Column("main_oeuvre", "Main-d'œuvre", "money", 14),
        Column("cout_pieces", "Pièces", "money", 14),
        Column("cout_total", "Coût total", "money", 14),
        Column("delai_respecte", "Délai respecté", "bool", 10),
    ),
)

EQUIPEMENTS = Liste(
    "equipements",
    (
        Column("equipement_id", "N°", "int", 8),
        Column("nom", "Nom", "text", 30),
        Column("type", "Type", "text", 18),
        Column("localisation", "Localisation", "text", 22),
        Column("numero_serie", "N° de série", "text", 18),
        Column("statut", "Statut", "text", 14),
        Column("criticite", "Criticité", "text", 12),
        Column("client", "Client", "text", 24),
    ),
)

PIECES = Liste(
    "pieces",
    (
        Column("reference", "Référence", "text", 18),
        Column("nom", "Désignation", "text", 34),
        Column("categorie", "Catégorie", "text", 18),
        Column("unite", "Unité", "text", 8),
        Column("prix_unitaire", "Prix unitaire", "money", 14),
        Column("stock_minimum", "Stock minimum", "decimal", 10),
        Column("stock_maximum", "Stock maximum", "decimal", 10),
        Column("disponible", "Disponible", "decimal", 10),
    ),
)

PLANS = Liste(
    "plans",
    (
        Column("id", "N°", "int", 8),
        Column("equipement", "Équipement", "text", 28),
        Column("declencheur", "Déclencheur", "text", 12),
        Column("frequence", "Fréquence", "text", 14),
        Column("prochaine_date", "Prochaine date", "datetime", 17),
        Column("prochaine_date_estimee", "Prochaine date estimée", "datetime", 17),
        Column("derniere_date", "Dernière date", "datetime", 17),
        Column("statut", "Statut", "text", 10),
        Column("technicien", "Technicien", "text", 22),
        Column("titre", "Titre", "text", 30),
    ),
)

KPIS = Liste(
    "kpis",
    (
        Column("periode", "Période", "date", 12),
        Column("cloturees", "Clôturées", "int", 10),
        Column("mttr_travaux_minutes", "MTTR travaux (min)", "decimal", 12),
        Column("mttr_resolution_minutes", "MTTR résolution (min)", "decimal", 12),
        Column("sla", "Respect des délais", "percent", 12),
        Column("conformite_preventive", "Conformité préventive", "percent", 12),
        Column("premiere_resolution", "Résolution du premier coup", "percent", 12),
        Column("backlog", "Backlog (fin de période)", "int", 12),
        Column("main_oeuvre", "Main-d'œuvre", "money", 14),
        Column("pieces", "Pièces", "money", 14),
        Column("total", "Coût total", "money", 14),
    ),
)

LISTES = {liste.nom: liste for liste in (INTERVENTIONS, EQUIPEMENTS, PIECES, PLANS, KPIS)}


def _period_terms(q: Question) -> list[sa.ColumnElement[bool]]:
    f = InterventionFait
    start = datetime.combine(q.du, time(), q.fuseau)
    end = datetime.combine(q.au + timedelta(days=1), time(), q.fuseau)
    return [f.date_creation >= start, f.date_creation < end]


def _interventions_where(q: Question, statut: str | None) -> list[sa.ColumnElement[bool]]:
    terms = [*_period_terms(q), *dimension_terms(q, InterventionFait.__table__)]
    if statut is not None:
        terms.append(InterventionFait.statut == statut)
    if q.rien:
        terms.append(sa.false())
    return terms


async def count_interventions(session: AsyncSession, q: Question, statut: str | None) -> int:
    found = await session.scalar(
        sa.select(sa.func.count()).select_from(InterventionFait).where(*_interventions_where(q, statut))
    )
    return int(found or 0)


async def interventions(
    session: AsyncSession, q: Question, statut: str | None, *, taux_horaire: int
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of rows, oldest id first."""
    f, e, c, t = InterventionFait, EquipementRef, ClientRef, TechnicienRef
    base = (
        sa.select(f, e.nom.label("equipement"), c.nom.label("client"), t.nom.label("technicien"))
        .outerjoin(e, e.equipement_id == f.equipement_id)
        .outerjoin(c, c.client_id == f.client_id)
        .outerjoin(t, t.technicien_id == f.technicien_id)
        .where(*_interventions_where(q, statut))
        .order_by(f.intervention_id)
        .limit(PAGE)
    )
    after = 0
    while True:
        rows = (await session.execute(base.where(f.intervention_id > after))).all()
        if not rows:
            return
        page = []
        for fait, equipement, client, technicien in rows:
            main_oeuvre = round((fait.duree_reelle or 0) * taux_horaire / 60) if fait.date_cloture else None
            cout_pieces = fait.cout_pieces or 0
            page.append(
                {
                    "id": fait.intervention_id,
                    "titre": fait.titre,
                    "type": fait.type,
                    "priorite": fait.priorite,
                    "statut": fait.statut,
                    "equipement": equipement,
                    "client": client,
                    "technicien": technicien,
                    "date_creation": fait.date_creation,
                    "date_limite": fait.date_limite,
                    "date_debut": fait.date_debut,
                    "date_cloture": fait.date_cloture,
                    "duree_reelle": fait.duree_reelle,
                    "main_oeuvre": main_oeuvre,
                    "cout_pieces": cout_pieces,
                    "cout_total": (main_oeuvre or 0) + cout_pieces,
                    "delai_respecte": (
                        fait.date_cloture <= fait.date_limite
                        if fait.date_cloture is not None and fait.date_limite is not None
                        else None
                    ),
                }
            )
        yield page
        after = rows[-1][0].intervention_id


def _equipements_where(q: Question) -> list[sa.ColumnElement[bool]]:
    e = EquipementRef
    terms: list[sa.ColumnElement[bool]] = [e.supprime.is_(False)]
    if q.client_id is not None:
        terms.append(e.client_id == q.client_id)
    if q.equipement_id is not None:
        terms.append(e.equipement_id == q.equipement_id)
    equipement = equipement_filter(q)
    if equipement is not None:
        terms.append(equipement)
    return terms


async def count_equipements(session: AsyncSession, q: Question) -> int:
    found = await session.scalar(sa.select(sa.func.count()).select_from(EquipementRef).where(*_equipements_where(q)))
    return int(found or 0)


async def equipements(session: AsyncSession, q: Question) -> AsyncIterator[list[dict[str, Any]]]:
    e, c = EquipementRef, ClientRef
    base = (
        sa.select(e, c.nom.label("client"))
        .outerjoin(c, c.client_id == e.client_id)
        .where(*_equipements_where(q))
        .order_by(e.equipement_id)
        .limit(PAGE)
    )
    after = 0
    while True:
        rows = (await session.execute(base.where(e.equipement_id > after))).all()
        if not rows:
            return
        yield [
            {
                "equipement_id": ref.equipement_id,
                "nom": ref.nom,
                "type": ref.type,
                "localisation": ref.localisation,
                "numero_serie": ref.numero_serie,
                "statut": ref.statut,
                "criticite": ref.criticite,
                "client": client,
            }
            for ref, client in rows
        ]
        after = rows[-1][0].equipement_id


_PIECES_WHERE = (PieceRef.supprime.is_(False), PieceRef.reference.is_not(None))


async def count_pieces(session: AsyncSession) -> int:
    return int(await session.scalar(sa.select(sa.func.count()).select_from(PieceRef).where(*_PIECES_WHERE)) or 0)


async def pieces(session: AsyncSession) -> AsyncIterator[list[dict[str, Any]]]:
    p = PieceRef
    base = sa.select(p).where(*_PIECES_WHERE).order_by(p.piece_id).limit(PAGE)
    after = 0
    while True:
        rows = (await session.scalars(base.where(p.piece_id > after))).all()
        if not rows:
            return
        yield [
            {
                "reference": r.reference,
                "nom": r.nom,
                "categorie": r.categorie,
                "unite": r.unite,
                "prix_unitaire": r.prix_unitaire,
                "stock_minimum": r.stock_minimum,
                "stock_maximum": r.stock_maximum,
                "disponible": r.disponible,
            }
            for r in rows
        ]
        after = rows[-1].piece_id


def plan_row(plan: dict[str, Any]) -> dict[str, Any]:
    """One plan as planning's list answers it, made a row."""

    def name(embedded: Any, *keys: str) -> Any:
        if not isinstance(embedded, dict):
            return None
        return next((embedded[k] for k in keys if embedded.get(k)), None)

    def moment(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    return {
        "id": plan.get("id"),
        "equipement": name(plan.get("equipement"), "nom") or f"Équipement {plan.get('equipement_id')}",
        "declencheur": plan.get("declencheur"),
        "frequence": plan.get("frequence"),
        "prochaine_date": moment(plan.get("prochaine_date")),
        "prochaine_date_estimee": moment(plan.get("prochaine_date_estimee")),
        "derniere_date": moment(plan.get("derniere_date")),
        "statut": plan.get("statut"),
        "technicien": name(plan.get("technicien"), "full_name", "nom", "username"),
        "titre": plan.get("titre"),
    }
