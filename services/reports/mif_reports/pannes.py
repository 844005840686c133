"""MTBF and availability: per equipment over the period, and per bucket over every equipment counted, from
the breakdown episodes (`panne_episode`, replicas.py rebuilds them from assets' statut changes).

The equipment counted are those the question's filters select (a technician's: the equipment of its
interventions). Both statements depend only on which filters are set: each shape is compiled once and run
with the question's values (mif_common.statements.Shapes), the buckets' bounds passed as two arrays.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.statements import Shapes
from mif_reports.models import EquipementRef, InterventionFait, PanneEpisode
from mif_reports.questions import Question, buckets, next_bucket

# The filters that select equipment (type and priority are the interventions', not the equipment's).
_FILTRES = ("client_id", "equipement_id", "type_equipement", "localisation", "technicien_id")
_INSTANT = sa.DateTime(timezone=True)


async def pannes(session: AsyncSession, q: Question, *, limite: int = 500) -> dict[str, Any]:
    start, end = q.start(), q.end()
    if q.rien or end <= start:
        return {"valeur": {}, "equipements": [], "series": []}
    filtres = {name: value for name in _FILTRES if (value := getattr(q, name)) is not None}
    shape = frozenset(filtres)
    connection = await session.connection()
    rows = await _PER_EQUIPEMENT.fetch(connection, shape, {"debut": start, "fin": end, **filtres})
    duration = (end - start).total_seconds()
    n = len(rows)
    bornes: dict[date, tuple[datetime, datetime]] = {}
    for b in buckets(q):
        lo = max(datetime.combine(b, time(), q.fuseau), start)
        hi = min(datetime.combine(next_bucket(q, b), time(), q.fuseau), end)
        if hi > lo:
            bornes[b] = (lo, hi)
    par_periode: dict[datetime, Any] = {}
    if bornes:
        values = {"los": [lo for lo, _ in bornes.values()], "his": [hi for _, hi in bornes.values()], "fin": end}
        records = await _PER_BUCKET.fetch(connection, shape, {**values, **filtres})
        par_periode = {r["lo"]: r for r in records}
    series = []
    for b in buckets(q):
        if b not in bornes:
            series.append({"periode": b, **_figures(0, 0.0, 0.0)})
            continue
        lo, hi = bornes[b]
        row = par_periode[lo]
        series.append(
            {"periode": b, **_figures(row["pannes"], float(row["secondes_arret"]), (hi - lo).total_seconds() * n)}
        )
    return {
        "valeur": _figures(sum(r["pannes"] for r in rows), sum(float(r["secondes_arret"]) for r in rows), duration * n),
        "equipements": [
            {
                "equipement_id": r["equipement_id"],
                "nom": r["nom"],
                **_figures(r["pannes"], float(r["secondes_arret"]), duration),
            }
            for r in rows[:limite]
        ],
        "series": series,
    }


def _figures(pannes: int, secondes_arret: float, secondes: float) -> dict[str, Any]:
    uptime = max(0.0, secondes - secondes_arret)
    return {
        "pannes": pannes,
        "heures_arret": round(secondes_arret / 3600, 2),
        "mtbf_heures": round(uptime / pannes / 3600, 2) if pannes else None,
        "disponibilite": round(uptime / secondes, 4) if secondes else None,
    }


def _scope(filtres: frozenset[str]) -> Any:
    """The equipment counted, as a CTE."""
    e = EquipementRef
    equipements = sa.select(e.equipement_id, e.nom).where(e.supprime.is_(False))
    bound: tuple[tuple[str, Any, Any], ...] = (
        ("client_id", e.client_id, sa.BigInteger),
        ("equipement_id", e.equipement_id, sa.BigInteger),
        ("type_equipement", e.type, sa.String),
        ("localisation", e.localisation, sa.String),
    )
    for name, column, type_ in bound:
        if name in filtres:
            equipements = equipements.where(column == sa.bindparam(name, type_=type_))
    if "technicien_id" in filtres:  # a technician: the equipment of its interventions
        theirs = sa.select(InterventionFait.equipement_id).where(
            InterventionFait.technicien_id == sa.bindparam("technicien_id", type_=sa.BigInteger)
        )
        equipements = equipements.where(e.equipement_id.in_(theirs))
    return equipements.cte("scope")


def _fin() -> Any:
    """An episode's end; one still running ends at the period's end."""
    return sa.func.coalesce(PanneEpisode.fin, sa.bindparam("fin", type_=_INSTANT))


def _per_equipement(filtres: frozenset[str]) -> sa.Select[Any]:
    scope, p, fin = _scope(filtres), PanneEpisode, _fin()
    start, end = sa.bindparam("debut", type_=_INSTANT), sa.bindparam("fin", type_=_INSTANT)
    downtime = sa.func.coalesce(
        sa.func.sum(sa.extract("epoch", sa.func.least(fin, end) - sa.func.greatest(p.debut, start))).filter(
            p.debut < end, fin > start
        ),
        0,
    )
    return (
        sa.select(
            scope.c.equipement_id,
            scope.c.nom,
            sa.func.count(p.debut).filter(p.debut >= start, p.debut < end).label("pannes"),
            downtime.label("secondes_arret"),
        )
        .select_from(scope.outerjoin(p, sa.and_(p.equipement_id == scope.c.equipement_id, p.debut < end, fin > start)))
        .group_by(scope.c.equipement_id, scope.c.nom)
        .order_by(sa.desc("secondes_arret"), scope.c.equipement_id)
    )


def _per_bucket(filtres: frozenset[str]) -> sa.Select[Any]:
    """Every bucket in one statement: the buckets' bounds as two arrays, each episode counted in those it
    overlaps."""
    scope, p, fin = _scope(filtres), PanneEpisode, _fin()
    instants = ARRAY(_INSTANT)
    periode = (
        sa.func.unnest(sa.bindparam("los", type_=instants), sa.bindparam("his", type_=instants))
        .table_valued("lo", "hi")
        .render_derived(name="periode")
    )
    lo, hi = periode.c.lo, periode.c.hi
    overlap = sa.extract("epoch", sa.func.least(fin, hi) - sa.func.greatest(p.debut, lo))
    return (
        sa.select(
            lo,
            sa.func.count(p.debut).filter(p.debut >= lo).label("pannes"),
            sa.func.coalesce(sa.func.sum(overlap), 0).label("secondes_arret"),
        )
        .select_from(
            periode.outerjoin(p, sa.and_(p.equipement_id.in_(sa.select(scope.c.equipement_id)), p.debut < hi, fin > lo))
        )
        .group_by(lo)
    )


_PARAMETRES = ("debut", "fin", "los", "his", *_FILTRES)
_PER_EQUIPEMENT = Shapes(_per_equipement, _PARAMETRES)
_PER_BUCKET = Shapes(_per_bucket, _PARAMETRES)
