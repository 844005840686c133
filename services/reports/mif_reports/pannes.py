"""MTBF and availability: per equipment over the period, and per bucket over every equipment counted, from
the breakdown episodes (`panne_episode`, replicas.py rebuilds them from assets' statut changes) and their
sums per equipment and month (`panne_mois`, rebuilt with them).

The period is cut in *segments*: the whole months inside it, whose closed breakdowns the monthly sums
answer, and the rest (the partial months at its edges, or buckets that are not months), where the
episodes overlapping it are read through the GiST index on their period. A breakdown still running is
always read from the episodes. So an MTBF over two years reads a row per equipment and month plus the
episodes of two partial months, not every episode joined with every bucket.

The equipment counted are those the question's filters select (a technician's: the equipment of its
interventions). One statement answers per equipment and per bucket; it depends only on which filters are
set: each shape is compiled once and run with the question's values (mif_common.statements.Shapes), the
segments passed as arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.statements import Shapes
from mif_reports.models import EquipementRef, InterventionFait, PanneEpisode, PanneMois
from mif_reports.questions import Question, buckets, next_bucket

# The filters that select equipment (type and priority are the interventions', not the equipment's).
_FILTRES = ("client_id", "equipement_id", "type_equipement", "localisation", "technicien_id")
_INSTANT = sa.DateTime(timezone=True)
# A segment of the period: [lo, hi), and whether every episode overlapping it is read (else only the running
# ones: the closed ones are in the monthly sums of `mois`).
Segment = tuple[datetime, datetime, bool, date | None]


def per_month(episodes: Iterable[tuple[datetime, datetime]], fuseau: ZoneInfo) -> dict[date, tuple[int, Decimal]]:
    """Closed episodes ([debut, fin)) as `panne_mois` holds them: per month of the company's calendar, how
    many began in it and the seconds of downtime within it (exact to the microsecond, as PostgreSQL's)."""
    out: dict[date, tuple[int, Decimal]] = {}
    for debut, fin in episodes:
        first = _month_of(debut, fuseau)
        n, secondes = out.get(first, (0, Decimal(0)))
        out[first] = (n + 1, secondes)
        lo = debut
        while lo < fin:
            mois = _month_of(lo, fuseau)
            hi = min(fin, datetime.combine(_next_month(mois), time(), fuseau))
            n, secondes = out.get(mois, (0, Decimal(0)))
            out[mois] = (n, secondes + _exact_seconds(hi - lo))
            lo = hi
    return out


def _month_of(instant: datetime, fuseau: ZoneInfo) -> date:
    return instant.astimezone(fuseau).date().replace(day=1)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _exact_seconds(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000


def _whole_months(q: Question, start: datetime, end: datetime) -> tuple[date, date] | None:
    """[premier, coupure): the months wholly inside the period, None if there is none."""
    premier = q.du if q.du.day == 1 else _next_month(q.du)
    coupure = _month_of(end, q.fuseau)
    if datetime.combine(coupure, time(), q.fuseau) < start or premier >= coupure:
        return None
    return premier, coupure


async def pannes(session: AsyncSession, q: Question, *, limite: int = 500) -> dict[str, Any]:
    start, end = q.start(), q.end()
    if q.rien or end <= start:
        return {"valeur": {}, "equipements": [], "series": []}
    filtres = {name: value for name in _FILTRES if (value := getattr(q, name)) is not None}
    shape = frozenset(filtres)
    whole = _whole_months(q, start, end)
    # One segment per bucket: a whole month of a monthly question (its closed breakdowns from panne_mois),
    # else the bucket's part of the period (every episode overlapping it).
    bornes: dict[date, Segment] = {}
    for b in buckets(q):
        lo = datetime.combine(b, time(), q.fuseau)
        hi = datetime.combine(next_bucket(q, b), time(), q.fuseau)
        entier = q.pas == "mois" and whole is not None and whole[0] <= b < whole[1]
        lo, hi = max(lo, start), min(hi, end)
        if hi > lo:
            bornes[b] = (lo, hi, not entier, b if entier else None)
    values: dict[str, Any] = {**_arrays(list(bornes.values())), "fin": end, **filtres}
    values["entiers"] = [mois for *_, mois in bornes.values() if mois is not None]
    records = await _PER_EQUIPEMENT_AND_BUCKET.fetch(await session.connection(), shape, values)
    rows = [r for r in records if r["lo"] is None]
    par_periode = {r["lo"]: r for r in records if r["lo"] is not None}
    duration = (end - start).total_seconds()
    n = len(rows)
    series = []
    for b in buckets(q):
        if b not in bornes:
            series.append({"periode": b, **_figures(0, 0.0, 0.0)})
            continue
        lo, hi, *_ = bornes[b]
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


def _arrays(segments: list[Segment]) -> dict[str, list[Any]]:
    return {
        "los": [s[0] for s in segments],
        "his": [s[1] for s in segments],
        "tous": [s[2] for s in segments],
        "moiss": [s[3] for s in segments],
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


def _segments() -> Any:
    columns = (
        ("los", _INSTANT, "lo"),
        ("his", _INSTANT, "hi"),
        ("tous", sa.Boolean, "tous"),
        ("moiss", sa.Date, "mois"),
    )
    return (
        sa.func.unnest(*(sa.bindparam(name, type_=ARRAY(type_)) for name, type_, _ in columns))
        .table_valued(*(label for *_, label in columns))
        .render_derived(name="segment")
    )


def _in_scope(scope: Any, column: Any) -> Any:
    return column.in_(sa.select(scope.c.equipement_id))


def _per_equipement_and_bucket(filtres: frozenset[str]) -> sa.Select[Any]:
    """Every equipment counted (downtime first) and every bucket (`lo` set), in one statement: the episodes
    joined with the segments once, the whole months' sums read once, each grouped both ways (GROUPING
    SETS). The segments partition the period, so an equipment's figures are the sum of its segments'."""
    scope, p, m, segment = _scope(filtres), PanneEpisode, PanneMois, _segments()
    lo, hi, mois = segment.c.lo, segment.c.hi, segment.c.mois
    fin = sa.func.coalesce(p.fin, sa.bindparam("fin", type_=_INSTANT))
    overlap = sa.extract("epoch", sa.func.least(fin, hi) - sa.func.greatest(p.debut, lo))
    segment_range = sa.func.tstzrange(lo, hi)
    # Every episode over an edge segment, only the running ones over whole months: each side its own GiST
    # index (a BitmapOr), so that the whole months do not fetch their thousands of closed episodes only to
    # filter them out. A whole month's segment probes the first index with an empty range.
    edges_only = sa.case((segment.c.tous, segment_range), else_=sa.literal_column("'empty'::tstzrange"))
    joined = sa.and_(
        _in_scope(scope, p.equipement_id),
        sa.or_(
            p.periode.op("&&")(edges_only),
            sa.and_(p.fin.is_(None), p.periode.op("&&")(segment_range)),
        ),
    )
    live = (
        sa.select(
            p.equipement_id,
            lo,
            mois,
            sa.func.count(p.debut).filter(p.debut >= lo).label("pannes"),
            # A segment no episode overlaps still has its row (outer join): its overlap would be the whole
            # segment.
            sa.func.coalesce(sa.func.sum(overlap).filter(p.debut.is_not(None)), 0).label("secondes_arret"),
        )
        .select_from(segment.outerjoin(p, joined))
        .group_by(sa.func.grouping_sets(sa.tuple_(p.equipement_id), sa.tuple_(lo, mois)))
        .cte("live")
    )
    monthly = (
        sa.select(
            m.equipement_id,
            m.mois,
            sa.func.sum(m.pannes).label("pannes"),
            sa.func.sum(m.secondes_arret).label("secondes"),
        )
        .where(
            _in_scope(scope, m.equipement_id),
            m.mois == sa.func.any(sa.bindparam("entiers", type_=ARRAY(sa.Date))),
        )
        .group_by(sa.func.grouping_sets(sa.tuple_(m.equipement_id), sa.tuple_(m.mois)))
        .cte("monthly")
    )
    pannes = sa.func.coalesce(live.c.pannes, 0) + sa.func.coalesce(monthly.c.pannes, 0)
    downtime = sa.func.coalesce(live.c.secondes_arret, 0) + sa.func.coalesce(monthly.c.secondes, 0)
    per_equipement = sa.select(
        scope.c.equipement_id,
        scope.c.nom,
        sa.null().label("lo"),
        pannes.label("pannes"),
        downtime.label("secondes_arret"),
    ).select_from(
        scope.outerjoin(live, live.c.equipement_id == scope.c.equipement_id).outerjoin(
            monthly, monthly.c.equipement_id == scope.c.equipement_id
        )
    )
    per_bucket = (
        sa.select(
            sa.null().label("equipement_id"),
            sa.null().label("nom"),
            live.c.lo,
            pannes.label("pannes"),
            downtime.label("secondes_arret"),
        )
        .select_from(live.outerjoin(monthly, monthly.c.mois == live.c.mois))
        .where(live.c.lo.is_not(None))
    )
    both = sa.union_all(per_equipement, per_bucket).subquery()
    return sa.select(both).order_by(both.c.lo.nulls_first(), sa.desc(both.c.secondes_arret), both.c.equipement_id)


_PARAMETRES = ("los", "his", "tous", "moiss", "entiers", "fin", *_FILTRES)
_PER_EQUIPEMENT_AND_BUCKET = Shapes(_per_equipement_and_bucket, _PARAMETRES)
