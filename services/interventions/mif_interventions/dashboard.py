"""The dashboard: `GET /dashboard/stats` (the exact shape of DOMAIN.md §8, for the existing frontend)
and `GET /dashboard/kpis` (what a maintenance manager steers by; formulas in docs/kpis.md). Both count
only what the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal, Role
from mif_interventions.lateness import late_clause
from mif_interventions.models import (
    OPEN_STATUTS,
    EquipementRef,
    Intervention,
    Priorite,
    Statut,
    TypeIntervention,
    UserRef,
)
from mif_interventions.repository import Visibilite

I = Intervention  # noqa: E741 - short alias for the many aggregate expressions below
_OPEN = [s.value for s in OPEN_STATUTS]


def month_start(at: datetime, months_back: int = 0) -> datetime:
    """First instant (UTC) of the month `months_back` months before `at`'s."""
    year, month = at.year, at.month - months_back
    while month <= 0:
        month += 12
        year -= 1
    return datetime(year, month, 1, tzinfo=UTC)


def _count(condition: sa.ColumnElement[bool] | None = None) -> sa.ColumnElement[int]:
    count = sa.func.count()
    return count.filter(condition) if condition is not None else count


def _rate(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


async def stats(session: AsyncSession, *, scope: Visibilite, principal: Principal, at: datetime) -> dict[str, Any]:
    """DOMAIN.md §8: `interventions{ouverte,en_cours,en_attente,terminees,total_mensuel,terminees_mensuel}`,
    `taux_resolution`, `evolution_mensuelle[{month,total}]`, `priorites{urgente,haute,normale,basse}`,
    `equipements{total,operationnel,maintenance}`, `utilisateurs{total,actifs}`."""
    this_month = month_start(at)
    cancelled = sa.or_(
        I.statut == Statut.annulee.value, sa.and_(I.statut == Statut.archivee.value, I.date_cloture.is_(None))
    )
    row = (
        await session.execute(
            sa.select(
                _count().label("total"),
                _count(I.statut.in_([Statut.ouverte.value, Statut.affectee.value])).label("ouverte"),
                _count(I.statut == Statut.en_cours.value).label("en_cours"),
                _count(I.statut == Statut.en_attente.value).label("en_attente"),
                _count(I.date_cloture.is_not(None)).label("terminees"),
                _count(cancelled).label("annulees"),
                _count(I.date_creation >= this_month).label("total_mensuel"),
                _count(I.date_cloture >= this_month).label("terminees_mensuel"),
                *(_count(I.priorite == p.value).label(p.value) for p in Priorite if p is not Priorite.programmee),
            ).where(*scope.clauses())
        )
    ).one()
    first = month_start(at, 5)
    month = sa.func.date_trunc("month", sa.func.timezone("UTC", I.date_creation))
    per_month: dict[datetime, int] = dict(
        (
            await session.execute(
                sa.select(month, sa.func.count()).where(*scope.clauses(), I.date_creation >= first).group_by(month)
            )
        ).all()
    )
    evolution = []
    for back in range(5, -1, -1):
        start = month_start(at, back)
        total = int(per_month.get(start.replace(tzinfo=None), 0))
        evolution.append({"month": start.strftime("%Y-%m"), "total": total})
    return {
        "interventions": {
            "ouverte": row.ouverte,
            "en_cours": row.en_cours,
            "en_attente": row.en_attente,
            "terminees": row.terminees,
            "total_mensuel": row.total_mensuel,
            "terminees_mensuel": row.terminees_mensuel,
        },
        "taux_resolution": _rate(row.terminees, row.total - row.annulees),
        "evolution_mensuelle": evolution,
        "priorites": {p.value: getattr(row, p.value) for p in Priorite if p is not Priorite.programmee},
        "equipements": await _equipements(session, principal=principal),
        "utilisateurs": await _utilisateurs(session, principal=principal),
    }


async def _equipements(session: AsyncSession, *, principal: Principal) -> dict[str, int]:
    """From the equipment replica; a client user counts its organisation's (as assets shows them)."""
    E = EquipementRef
    query = sa.select(
        _count().label("total"),
        _count(E.statut == "operationnel").label("operationnel"),
        _count(E.statut == "maintenance").label("maintenance"),
    )
    only = principal.organisation()
    if only is not None:
        query = query.where(E.client_id == only)
    row = (await session.execute(query)).one()
    return {"total": row.total, "operationnel": row.operationnel, "maintenance": row.maintenance}


async def _utilisateurs(session: AsyncSession, *, principal: Principal) -> dict[str, int]:
    """From the user replica: managers count every account, a client user its organisation's, a
    technician the technicians' accounts."""
    U = UserRef
    query = sa.select(_count().label("total"), _count(U.is_active.is_(True)).label("actifs"))
    only = principal.organisation()
    if only is not None:
        query = query.where(U.client_id == only)
    elif principal.role is Role.technicien:
        query = query.where(U.role == Role.technicien.value)
    row = (await session.execute(query)).one()
    return {"total": row.total, "actifs": row.actifs}


def _minutes(seconds: Any) -> float | None:
    return round(float(seconds) / 60.0, 1) if seconds is not None else None


async def kpis(session: AsyncSession, *, scope: Visibilite, du: datetime, au: datetime, at: datetime) -> dict[str, Any]:
    """Backlog, lateness, MTTR, resolution lead time, SLA compliance and parts cost (docs/kpis.md)."""
    where = scope.clauses()
    backlog_rows = (
        await session.execute(
            sa.select(I.statut, I.priorite, sa.func.count())
            .where(*where, I.statut.in_(_OPEN))
            .group_by(I.statut, I.priorite)
        )
    ).all()
    par_statut = {s: 0 for s in _OPEN}
    par_priorite = {p.value: 0 for p in Priorite}
    for statut, priorite, n in backlog_rows:
        par_statut[statut] += n
        par_priorite[priorite] += n
    en_retard = await session.scalar(sa.select(sa.func.count()).where(*where, late_clause(at)))

    closed = [*where, I.date_cloture >= du, I.date_cloture < au]
    repair = sa.func.extract("epoch", I.date_cloture - I.date_debut_travaux)
    lead = sa.func.extract("epoch", I.date_cloture - I.date_creation)
    per_type = {
        r.type: r
        for r in (
            await session.execute(
                sa.select(
                    I.type,
                    sa.func.count().label("n"),
                    sa.func.avg(repair).label("repair"),
                    sa.func.avg(lead).label("lead"),
                )
                .where(*closed)
                .group_by(I.type)
            )
        ).all()
    }
    overall = (
        await session.execute(
            sa.select(
                sa.func.count().label("n"),
                sa.func.avg(repair).label("repair"),
                sa.func.avg(lead).label("lead"),
                # The parts cost of the same population (interventions without one count 0).
                sa.func.coalesce(sa.func.sum(I.cout_pieces), 0).label("cout_pieces"),
            ).where(*closed)
        )
    ).one()

    on_time = I.date_cloture <= I.date_limite
    sla_rows = {
        r.priorite: r
        for r in (
            await session.execute(
                sa.select(I.priorite, sa.func.count().label("n"), _count(on_time).label("ok"))
                .where(*closed, I.date_limite.is_not(None))
                .group_by(I.priorite)
            )
        ).all()
    }
    creees = await session.scalar(sa.select(sa.func.count()).where(*where, I.date_creation >= du, I.date_creation < au))

    def sla_entry(n: int, ok: int) -> dict[str, Any]:
        return {"cloturees": n, "dans_les_delais": ok, "taux": round(100.0 * ok / n, 1) if n else None}

    sla_total_n = sum(r.n for r in sla_rows.values())
    sla_total_ok = sum(r.ok for r in sla_rows.values())
    return {
        "periode": {"du": du, "au": au},
        "backlog": {"total": sum(par_statut.values()), "par_statut": par_statut, "par_priorite": par_priorite},
        "en_retard": int(en_retard or 0),
        "creees": int(creees or 0),
        "cloturees": overall.n,
        "mttr": {
            "definition": "mean of date_cloture - date_debut_travaux over interventions closed in the period, minutes",
            "minutes": _minutes(overall.repair),
            "par_type": {
                t.value: {
                    "minutes": _minutes(per_type[t.value].repair) if t.value in per_type else None,
                    "cloturees": per_type[t.value].n if t.value in per_type else 0,
                }
                for t in TypeIntervention
            },
        },
        "delai_resolution": {
            "definition": "mean of date_cloture - date_creation over interventions closed in the period, minutes",
            "minutes": _minutes(overall.lead),
            "par_type": {
                t.value: _minutes(per_type[t.value].lead) if t.value in per_type else None for t in TypeIntervention
            },
        },
        "sla": {
            "definition": "share of interventions closed in the period with a date_limite that closed by it, percent",
            "taux": sla_entry(sla_total_n, sla_total_ok)["taux"],
            "par_priorite": {
                p.value: sla_entry(sla_rows[p.value].n, sla_rows[p.value].ok)
                if p.value in sla_rows
                else sla_entry(0, 0)
                for p in Priorite
                if p is not Priorite.programmee
            },
        },
        "cout_pieces_total": int(overall.cout_pieces),
    }


def default_period(at: datetime) -> tuple[datetime, datetime]:
    return at - timedelta(days=30), at
