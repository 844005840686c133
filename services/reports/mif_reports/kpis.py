"""The KPIs: each a formula over the sums (aggregates.py keeps them, sums.py reads them) or over the
breakdown episodes, for one question (period, filters, grouping) already narrowed to what the caller may
see (questions.py, scope.py).

Every formula is written once, in `FORMULES`: the OpenAPI descriptions and docs/reports.md show them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.statements import Statement
from mif_reports.models import EquipementRef, InterventionFait, PanneEpisode, TechnicienRef
from mif_reports.questions import Question, buckets, dimension_terms, equipement_filter, next_bucket
from mif_reports.sums import Ligne, sums

FORMULES: dict[str, str] = {
    "mttr": (
        "Per intervention type, over interventions closed in the period (closure day): MTTR travaux = "
        "Σ(closure − start of work) ÷ closed interventions that had a start; MTTR résolution = "
        "Σ(closure − creation) ÷ closed interventions. Minutes."
    ),
    "mtbf": (
        "Per equipment: MTBF = (time in the period − time in `panne`) ÷ breakdowns that began in the period "
        "(hours; null without a breakdown). A breakdown runs from assets' statut change to `panne` to the next "
        "change away from it (a corrective closure usually). The period ends at now at the latest."
    ),
    "disponibilite": (
        "Per equipment: availability = 1 − time in `panne` within the period ÷ time in the period (ratio). "
        "The total is Σ uptime ÷ Σ time over the equipment counted."
    ),
    "backlog": (
        "Open interventions (ouverte, affectee, en_cours, en_attente) at the end of each bucket = created up "
        "to then − left the backlog up to then (closed, cancelled, archived). Age buckets at the end of the "
        "period: 0–7, 8–30, 31–90 and > 90 days since creation."
    ),
    "conformite-preventive": (
        "Preventive interventions whose deadline falls in the period (cancelled ones excepted): closed by "
        "their deadline ÷ due (ratio). One still open past its deadline counts as missed."
    ),
    "sla": (
        "Per priority, over interventions closed in the period that had a deadline: closed by the deadline ÷ "
        "closed with a deadline (ratio)."
    ),
    "premiere-resolution": (
        "Correctives closed in the period: 1 − those followed by another corrective on the same equipment "
        "within N days of their closure (setting `premiere_resolution_jours`, 30 by default) ÷ correctives "
        "closed (ratio). A closure less than N days old can still turn out not to be a first-time fix."
    ),
    "utilisation": (
        "Worked minutes (`duree_reelle` of the interventions closed in the period) ÷ available minutes "
        "(working days Monday–Friday in the period, up to today, × `minutes_disponibles_par_jour` (480) × "
        "technicians counted: one with a technician filter, else the active technicians) (ratio)."
    ),
    "couts": (
        "Interventions closed in the period: labour = Σ worked minutes × `taux_horaire` ÷ 60; parts = Σ "
        "parts cost from inventory (consumed quantity × unit price at consumption, net of returns); total = "
        "labour + parts. Centimes of MAD, per bucket and per equipment, client or technician."
    ),
}


def ratio(numerateur: float, denominateur: float) -> float | None:
    return round(numerateur / denominateur, 4) if denominateur else None


def _minutes(secondes: int, n: int) -> float | None:
    return round(secondes / n / 60, 1) if n else None


# --- the KPIs ---------------------------------------------------------------------------------------------


async def mttr(session: AsyncSession, q: Question) -> dict[str, Any]:
    metrics = ("cloturees", "demarrees", "secondes_travaux", "secondes_resolution")
    rows = await sums(session, q, metrics, par="type")
    by_bucket = _par_periode(rows)
    series: dict[date, dict[str, Any]] = defaultdict(lambda: {"par_type": {}})
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(metrics, 0))
    for row in rows:
        series[row["periode"]]["par_type"][row["type"]] = _mttr_figures(row)
        for m in metrics:
            totals[row["type"]][m] += row[m]
    overall = {m: sum(t[m] for t in totals.values()) for m in metrics}
    return {
        "valeur": _mttr_figures(overall),
        "par_type": {t: _mttr_figures(v) for t, v in sorted(totals.items())},
        "series": [
            {"periode": b, **_mttr_figures({m: sum(v[m] for v in by_bucket[b]) for m in metrics}), **series[b]}
            for b in buckets(q)
        ],
    }


def _par_periode(rows: list[Ligne]) -> dict[date, list[Ligne]]:
    """The rows of each bucket (grouped once: a series looks each bucket up)."""
    grouped: dict[date, list[Ligne]] = defaultdict(list)
    for row in rows:
        grouped[row["periode"]].append(row)
    return grouped


def _mttr_figures(row: Ligne) -> dict[str, Any]:
    return {
        "cloturees": row["cloturees"],
        "mttr_travaux_minutes": _minutes(row["secondes_travaux"], row["demarrees"]),
        "mttr_resolution_minutes": _minutes(row["secondes_resolution"], row["cloturees"]),
    }


async def _ratio_kpi(
    session: AsyncSession, q: Question, numerateur: str, denominateur: str, *, par: str | None = None
) -> dict[str, Any]:
    rows = await sums(session, q, (numerateur, denominateur), par=par)
    by_bucket = _par_periode(rows)
    num = sum(r[numerateur] for r in rows)
    den = sum(r[denominateur] for r in rows)
    answer: dict[str, Any] = {
        "valeur": ratio(num, den),
        numerateur: num,
        denominateur: den,
        "series": [
            {
                "periode": b,
                "valeur": ratio(sum(r[numerateur] for r in by_bucket[b]), sum(r[denominateur] for r in by_bucket[b])),
                numerateur: sum(r[numerateur] for r in by_bucket[b]),
                denominateur: sum(r[denominateur] for r in by_bucket[b]),
            }
            for b in buckets(q)
        ],
    }
    if par is not None:
        groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            groups[r[par]][0] += r[numerateur]
            groups[r[par]][1] += r[denominateur]
        answer[f"par_{par}"] = {
            k: {"valeur": ratio(n, d), numerateur: n, denominateur: d} for k, (n, d) in sorted(groups.items()) if d
        }
    return answer


async def conformite_preventive(session: AsyncSession, q: Question) -> dict[str, Any]:
    return await _ratio_kpi(session, q, "preventives_a_temps", "preventives_dues")


async def sla(session: AsyncSession, q: Question) -> dict[str, Any]:
    return await _ratio_kpi(session, q, "sla_respectees", "sla_evaluees", par="priorite")


async def premiere_resolution(session: AsyncSession, q: Question) -> dict[str, Any]:
    rows = await sums(session, q, ("correctives_cloturees", "correctives_refaites"))
    by_bucket = _par_periode(rows)

    def figures(closed: int, redone: int) -> dict[str, Any]:
        return {
            "valeur": ratio(closed - redone, closed),
            "correctives_cloturees": closed,
            "correctives_refaites": redone,
        }

    return {
        **figures(sum(r["correctives_cloturees"] for r in rows), sum(r["correctives_refaites"] for r in rows)),
        "series": [
            {
                "periode": b,
                **figures(
                    sum(r["correctives_cloturees"] for r in by_bucket[b]),
                    sum(r["correctives_refaites"] for r in by_bucket[b]),
                ),
            }
            for b in buckets(q)
        ],
    }


async def backlog(session: AsyncSession, q: Question) -> dict[str, Any]:
    rows = await sums(session, q, ("creees", "sorties"), depuis_le_debut=True)
    running = 0
    at_end: dict[date, int] = {}
    before = 0
    for row in rows:
        running += row["creees"] - row["sorties"]
        at_end[row["periode"]] = running
    series = []
    for b in buckets(q):
        earlier = [v for k, v in at_end.items() if k <= b]
        before = at_end[max(k for k in at_end if k <= b)] if earlier else 0
        series.append({"periode": b, "valeur": before})
    moment = q.end()
    ages = await _backlog_ages(session, q, moment)
    return {"valeur": series[-1]["valeur"] if series else 0, "ages_au": moment, "ages": ages, "series": series}


_AGES = (("0-7", 0, 7), ("8-30", 8, 30), ("31-90", 31, 90), ("91+", 91, None))


async def _backlog_ages(session: AsyncSession, q: Question, moment: datetime) -> dict[str, int]:
    if q.rien:
        return {label: 0 for label, *_ in _AGES}
    fait = InterventionFait
    age = sa.func.floor(sa.extract("epoch", sa.literal(moment) - fait.date_creation) / 86400)
    columns = [
        sa.func.count().filter(age >= low if high is None else age.between(low, high)).label(label)
        for label, low, high in _AGES
    ]
    terms: list[sa.ColumnElement[Any]] = [fait.ouverte_pendant.op("@>")(sa.literal(moment, sa.DateTime(timezone=True)))]
    terms.extend(dimension_terms(q, fait.__table__))
    row = (await session.execute(sa.select(*columns).where(*terms))).mappings().one()
    return {label: int(row[label]) for label, *_ in _AGES}


def _working_days(start: date, end: date) -> int:
    """Monday to Friday in [start, end)."""
    days = 0
    current = start
    while current < end:
        days += current.weekday() < 5
        current += timedelta(days=1)
    return days


async def utilisation(session: AsyncSession, q: Question, *, minutes_par_jour: int) -> dict[str, Any]:
    rows = await sums(session, q, ("minutes_travaillees",), par="technicien_id", separes=True)
    per_bucket = {r["periode"]: r["minutes_travaillees"] for r in rows if r["periode"] is not None}
    per_technicien = {
        r["technicien_id"]: r["minutes_travaillees"] for r in rows if r["periode"] is None and r["technicien_id"]
    }
    if q.technicien_id is not None:
        techniciens = 0 if q.rien else 1
    else:
        techniciens = (await _ACTIVE_TECHNICIANS.fetch(await session.connection(), {}))[0][0]
    today = q.end().astimezone(q.fuseau).date()

    def available(start: date, end: date) -> int:
        return _working_days(max(start, q.du), min(end, q.au + timedelta(days=1), today + timedelta(days=1)))

    series = []
    for b in buckets(q):
        worked = per_bucket.get(b, 0)
        dispo = available(b, next_bucket(q, b)) * minutes_par_jour * techniciens
        series.append(
            {"periode": b, "valeur": ratio(worked, dispo), "minutes_travaillees": worked, "minutes_disponibles": dispo}
        )
    worked = sum(per_bucket.values())
    dispo = available(q.du, q.au + timedelta(days=1)) * minutes_par_jour * techniciens
    one = available(q.du, q.au + timedelta(days=1)) * minutes_par_jour
    return {
        "valeur": ratio(worked, dispo),
        "minutes_travaillees": worked,
        "minutes_disponibles": dispo,
        "techniciens": techniciens,
        "par_technicien": [
            {"technicien_id": t, "minutes_travaillees": m, "valeur": ratio(m, one)}
            for t, m in sorted(per_technicien.items())
        ],
        "series": series,
    }


_ACTIVE_TECHNICIANS = Statement(
    lambda: sa.select(sa.func.count()).select_from(TechnicienRef).where(TechnicienRef.is_active.is_(True)), ()
)


async def couts(session: AsyncSession, q: Question, *, taux_horaire: int, par: str | None) -> dict[str, Any]:
    rows = await sums(session, q, ("minutes_travaillees", "cout_pieces", "cloturees"), par=par, separes=True)
    # With `par`, the rows are per bucket (`par` None) and per value (`periode` None); without, per bucket.
    per_bucket = _par_periode([r for r in rows if r["periode"] is not None])

    def figures(minutes: int, pieces: int, closed: int) -> dict[str, Any]:
        labour = round(minutes * taux_horaire / 60)
        return {"cloturees": closed, "main_oeuvre": labour, "pieces": pieces, "total": labour + pieces}

    def total(selected: list[Ligne]) -> dict[str, Any]:
        return figures(
            sum(r["minutes_travaillees"] for r in selected),
            sum(r["cout_pieces"] for r in selected),
            sum(r["cloturees"] for r in selected),
        )

    answer: dict[str, Any] = {
        "valeur": total([r for r in rows if r["periode"] is not None]),
        "series": [{"periode": b, **total(per_bucket[b])} for b in buckets(q)],
    }
    if par is not None:
        groups = [r for r in rows if r["periode"] is None]
        answer["groupes"] = sorted(
            ({par: r[par] or None, **total([r])} for r in groups), key=lambda g: -int(g["total"])
        )
    return answer


async def pannes(session: AsyncSession, q: Question, *, limite: int = 500) -> dict[str, Any]:
    """MTBF and availability: per equipment over the period, and per bucket over every equipment counted."""
    start, end = q.start(), q.end()
    if q.rien or end <= start:
        return {"valeur": {}, "equipements": [], "series": []}
    equipements = sa.select(EquipementRef.equipement_id, EquipementRef.nom).where(EquipementRef.supprime.is_(False))
    if q.client_id is not None:
        equipements = equipements.where(EquipementRef.client_id == q.client_id)
    if q.equipement_id is not None:
        equipements = equipements.where(EquipementRef.equipement_id == q.equipement_id)
    equipement = equipement_filter(q)
    if equipement is not None:
        equipements = equipements.where(equipement)
    if q.technicien_id is not None:  # a technician: the equipment of its interventions
        equipements = equipements.where(
            EquipementRef.equipement_id.in_(
                sa.select(InterventionFait.equipement_id).where(InterventionFait.technicien_id == q.technicien_id)
            )
        )
    scope = equipements.cte("scope")
    p = PanneEpisode
    fin = sa.func.coalesce(p.fin, sa.literal(end))

    def downtime(lo: Any, hi: Any) -> Any:
        return sa.func.coalesce(
            sa.func.sum(sa.extract("epoch", sa.func.least(fin, hi) - sa.func.greatest(p.debut, lo))).filter(
                p.debut < hi, fin > lo
            ),
            0,
        )

    per_equipement = (
        sa.select(
            scope.c.equipement_id,
            scope.c.nom,
            sa.func.count(p.debut).filter(p.debut >= start, p.debut < end).label("pannes"),
            downtime(sa.literal(start), sa.literal(end)).label("secondes_arret"),
        )
        .select_from(scope.outerjoin(p, sa.and_(p.equipement_id == scope.c.equipement_id, p.debut < end, fin > start)))
        .group_by(scope.c.equipement_id, scope.c.nom)
        .order_by(sa.desc("secondes_arret"), scope.c.equipement_id)
    )
    rows = (await session.execute(per_equipement)).mappings().all()
    duration = (end - start).total_seconds()
    equipment = [_pannes_figures(r["pannes"], float(r["secondes_arret"]), duration) for r in rows]
    n = len(rows)
    bornes: dict[date, tuple[datetime, datetime]] = {}
    for b in buckets(q):
        lo = max(datetime.combine(b, time(), q.fuseau), start)
        hi = min(datetime.combine(next_bucket(q, b), time(), q.fuseau), end)
        if hi > lo:
            bornes[b] = (lo, hi)
    par_periode: dict[datetime, Any] = {}
    if bornes:
        # Every bucket in one statement (its shape does not depend on how many there are, so it is
        # compiled once): the buckets' bounds as two arrays, each episode counted in those it overlaps.
        instants = ARRAY(sa.DateTime(timezone=True))
        periode = (
            sa.func.unnest(
                sa.literal([lo for lo, _ in bornes.values()], instants),
                sa.literal([hi for _, hi in bornes.values()], instants),
            )
            .table_valued("lo", "hi")
            .render_derived(name="periode")
        )
        lo_c, hi_c = periode.c.lo, periode.c.hi
        per_bucket = (
            sa.select(
                lo_c,
                sa.func.count(p.debut).filter(p.debut >= lo_c).label("pannes"),
                sa.func.coalesce(
                    sa.func.sum(sa.extract("epoch", sa.func.least(fin, hi_c) - sa.func.greatest(p.debut, lo_c))), 0
                ).label("secondes_arret"),
            )
            .select_from(
                periode.outerjoin(
                    p,
                    sa.and_(p.equipement_id.in_(sa.select(scope.c.equipement_id)), p.debut < hi_c, fin > lo_c),
                )
            )
            .group_by(lo_c)
        )
        par_periode = {r["lo"]: r for r in (await session.execute(per_bucket)).mappings()}
    series = []
    for b in buckets(q):
        if b not in bornes:
            series.append({"periode": b, **_pannes_figures(0, 0.0, 0.0)})
            continue
        lo, hi = bornes[b]
        row = par_periode[lo]
        series.append(
            {
                "periode": b,
                **_pannes_figures(row["pannes"], float(row["secondes_arret"]), (hi - lo).total_seconds() * n),
            }
        )
    return {
        "valeur": _pannes_figures(
            sum(r["pannes"] for r in rows), sum(float(r["secondes_arret"]) for r in rows), duration * n
        ),
        "equipements": [
            {"equipement_id": r["equipement_id"], "nom": r["nom"], **figures}
            for r, figures in list(zip(rows, equipment, strict=True))[:limite]
        ],
        "series": series,
    }


def _pannes_figures(pannes: int, secondes_arret: float, secondes: float) -> dict[str, Any]:
    uptime = max(0.0, secondes - secondes_arret)
    return {
        "pannes": pannes,
        "heures_arret": round(secondes_arret / 3600, 2),
        "mtbf_heures": round(uptime / pannes / 3600, 2) if pannes else None,
        "disponibilite": round(uptime / secondes, 4) if secondes else None,
    }
