"""The KPIs: each a formula over the sums (aggregates.py keeps them, sums.py reads them) or over the
breakdown episodes, for one question (period, filters, grouping) already narrowed to what the caller may
see (questions.py, scope.py).

Every formula is written once, in `FORMULES`: the OpenAPI descriptions and docs/reports.md show them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.statements import Shapes, Statement
from mif_reports.models import InterventionFait, TechnicienRef
from mif_reports.questions import Question, buckets, next_bucket
from mif_reports.sums import FILTRES, Ligne, bound_dimension_terms, filter_values, sums

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
    values = filter_values(q)
    records = await _AGES_STATEMENTS.fetch(await session.connection(), frozenset(values), {"moment": moment, **values})
    return {label: int(records[0][label]) for label, *_ in _AGES}


def _ages_statement(filtres: frozenset[str]) -> Any:
    """How many interventions were open at `moment`, per age bucket (the GiST index on their open interval)."""
    fait = InterventionFait
    moment = sa.bindparam("moment", type_=sa.DateTime(timezone=True))

    def days_before(days: int) -> Any:
        return moment - sa.literal_column(f"interval '{days} days'")

    # Whole days of age between low and high ⇔ created in (moment − (high + 1) days, moment − low days]:
    # timestamps compared, not an age computed in numeric for each open intervention.
    columns = [
        sa.func.count()
        .filter(
            fait.date_creation <= days_before(low),
            *(() if high is None else (fait.date_creation > days_before(high + 1),)),
        )
        .label(label)
        for label, low, high in _AGES
    ]
    terms = [fait.ouverte_pendant.op("@>")(moment), *bound_dimension_terms(filtres, fait.__table__)]
    return sa.select(*columns).where(*terms)


_AGES_STATEMENTS = Shapes(_ages_statement, ("moment", *FILTRES))


def working_days(start: date, end: date) -> int:
    """Monday to Friday in [start, end): five per whole week, then the rest day by day (two years asked
    per bucket were 2,000 steps of a loop per request)."""
    if end <= start:
        return 0
    weeks, rest = divmod((end - start).days, 7)
    first = start.weekday()
    return weeks * 5 + sum((first + i) % 7 < 5 for i in range(rest))


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
        return working_days(max(start, q.du), min(end, q.au + timedelta(days=1), today + timedelta(days=1)))

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
