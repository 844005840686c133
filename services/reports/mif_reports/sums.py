"""Reading the KPI sums (aggregates.py keeps them): which table answers a question, and its statement.

A question whose filters fit one axis (none, or one of client, technician, equipment type) and that
neither filters nor groups by type or priority reads the totals of that axis: `agregat_total_mois` for
the whole months of a monthly question, `agregat_total_jour` for its partial edge months and for any other
bucket size; a row per value and day or month. With type or priority as well, a monthly question reads its
whole months in `agregat_mois` and the edges in the daily sums. A monthly question filtered on one axis and
grouped by a client or a technician (neither type nor priority) reads its whole months in
`agregat_paire_mois` and its edges in the per-dimension daily sums. Any other question reads the daily
sums: the per-day totals when it filters by type or priority only, else the per-dimension sums.

A question's statement depends only on its *shape* (which filters are set, the grouping, the metrics, the
table): each shape is built and compiled once, then run with the question's values as asyncpg's prepared
statement (mif_common.statements). Building the union and letting SQLAlchemy find it in its cache cost
more CPU than PostgreSQL spent answering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.statements import Shapes
from mif_reports.models import (
    METRIQUES,
    PAIRES_MOIS,
    EquipementRef,
    agregat_jour,
    agregat_jour_global,
    agregat_mois,
    agregat_paire_mois,
    agregat_total_jour,
    agregat_total_mois,
)
from mif_reports.questions import TRUNC, Pas, Question

Ligne = dict[str, Any]

# The filters a question may set, as they are bound in the statements.
FILTRES = ("client_id", "equipement_id", "technicien_id", "type_equipement", "localisation", "type", "priorite")
# The monthly sums' axis for each `par` dimension that has one.
_AXE_DE_PAR = {"client_id": "client", "technicien_id": "technicien"}


@dataclass(frozen=True, slots=True)
class Forme:
    """What shapes a question's statement; its values are bound at each run."""

    pas: Pas
    metriques: tuple[str, ...]
    par: str | None
    filtres: frozenset[str]
    jour: str  # the daily sums read, a key of _TABLES_JOUR
    mensuel: bool  # whole months from the monthly sums of the axis
    valeur: bool  # one value of the axis (else every value, grouped by `par`)
    depuis_le_debut: bool
    separes: bool  # per bucket and per `par` value apart, not per bucket × value
    paire: bool  # whole months from the pair sums (one axis's value, per value of `par`)


async def sums(
    session: AsyncSession,
    q: Question,
    metriques: Sequence[str],
    *,
    par: str | None = None,
    depuis_le_debut: bool = False,
    separes: bool = False,
) -> list[Ligne]:
    """Σ of `metriques` per bucket (`periode`, the bucket's first day) and, with `par`, per that dimension
    too: rows ordered by bucket. `depuis_le_debut`: from the first day ever, not from `du` (a running sum).
    `separes` (with `par`): one row per bucket (`par` None) and one per value of `par` over the whole
    period (`periode` None), for a KPI that never shows the two crossed (a few dozen rows, not hundreds)."""
    if q.rien:
        return []
    values: dict[str, Any] = {"du": q.du, "au": q.au, **filter_values(q)}
    axe = _axe(q, par)
    totaux = axe is not None and q.type is None and q.priorite is None and par not in ("type", "priorite")
    paire = _paire(q, par) if axe is None and q.pas == "mois" else None
    if paire is not None:
        values["axe"], values["valeur"], values["par_axe"] = paire
    elif axe is not None and (totaux or q.pas == "mois"):
        values["axe"], values["valeur"] = axe
    mensuel = "axe" in values and q.pas == "mois"
    if mensuel:
        # Whole months: from the first that starts on or after `du` to the last that ends by `au`.
        values["premier"] = q.du if q.du.day == 1 else _next_month(q.du)
        values["coupure"] = (q.au + timedelta(days=1)).replace(day=1)
    fine = q.fine or par in ("client_id", "equipement_id", "technicien_id")
    forme = Forme(
        pas=q.pas,
        metriques=tuple(metriques),
        par=par,
        filtres=frozenset(filter_values(q)),
        jour="total" if totaux else "fin" if fine else "global",
        mensuel=mensuel,
        valeur=paire is not None or (axe is not None and axe[1] is not None),
        depuis_le_debut=depuis_le_debut,
        separes=separes and par is not None,
        paire=paire is not None,
    )
    records = await _STATEMENTS.fetch(await session.connection(), forme, values)
    return [dict(record) for record in records]


def _axis_filters(q: Question) -> dict[str, str] | None:
    """The axes the question filters on, with their values; None when it filters on an equipment or a
    place, which only the per-dimension daily sums answer."""
    if q.equipement_id is not None or q.localisation is not None:
        return None
    return {
        axe: str(valeur)
        for axe, valeur in (
            ("client", q.client_id),
            ("technicien", q.technicien_id),
            ("type_equipement", q.type_equipement),
        )
        if valeur is not None
    }


def _axe(q: Question, par: str | None) -> tuple[str, str | None] | None:
    """(axe, valeur) of the per-axis sums that answer the question (valeur None: every value, grouped by
    `par`), or None when only the per-dimension daily sums can (another grouping, a filter on equipment or
    place, or filters on two axes)."""
    filtres = _axis_filters(q)
    if filtres is None or len(filtres) > 1:
        return None
    if par is None or par in ("type", "priorite"):
        return next(iter(filtres.items()), ("tout", ""))
    axe = _AXE_DE_PAR.get(par)
    if axe is None or (filtres and axe not in filtres):
        return None
    return axe, filtres.get(axe)


def _paire(q: Question, par: str | None) -> tuple[str, str, str] | None:
    """(axe, valeur, axe of `par`) of the pair sums that answer a question filtered on one axis only and
    grouped by a client or a technician, neither filtering nor grouping by type or priority; else None."""
    filtres = _axis_filters(q)
    if par not in _AXE_DE_PAR or q.type is not None or q.priorite is not None or filtres is None:
        return None
    if len(filtres) != 1:
        return None
    [(axe, valeur)] = filtres.items()
    return (axe, valeur, _AXE_DE_PAR[par]) if (axe, _AXE_DE_PAR[par]) in PAIRES_MOIS else None


_TABLES_JOUR = {"global": agregat_jour_global, "fin": agregat_jour, "total": agregat_total_jour}
# The whole months of a monthly question: the per-axis totals, the pair sums, or the per-axis sums by type
# and priority (the per-dimension daily sums have no monthly counterpart of their own).
_TABLES_MOIS = {"total": agregat_total_mois, "paire": agregat_paire_mois, "fin": agregat_mois, "global": agregat_mois}


def _statement(f: Forme) -> sa.Select[Any]:
    table = _TABLES_JOUR[f.jour]
    jour = table.c.jour
    periode = sa.func.date_trunc(TRUNC[f.pas], jour).cast(sa.Date).label("periode")
    daily = [
        jour <= _date("au"),
        *(_axis_terms(f, table) if f.jour == "total" else bound_dimension_terms(f.filtres, table)),
    ]
    if not f.depuis_le_debut:
        daily.append(jour >= _date("du"))
    parts = []
    if f.mensuel:
        monthly_table = _TABLES_MOIS["paire" if f.paire else f.jour]
        mois = monthly_table.c.mois
        monthly = [*_axis_terms(f, monthly_table), mois < _date("coupure")]
        if f.paire:
            # A row every figure of which went to zero is a value the axis lost (an equipment retyped takes
            # its sums to its new type): the daily sums, read through the equipment's type, never show it.
            live = sa.or_(*(monthly_table.c[m] != 0 for m in METRIQUES))
            monthly += [monthly_table.c.par == sa.bindparam("par_axe", type_=sa.String), live]
        if not f.depuis_le_debut:
            monthly.append(mois >= _date("premier"))
        parts.append(_part(monthly_table, mois.label("periode"), f, monthly))
        # The edges as two ranges of days, not one range with an OR: an OR across the period made
        # PostgreSQL walk every day of it in the index and filter.
        parts.append(_part(table, periode, f, [*daily, jour >= _date("coupure")]))
        if not f.depuis_le_debut:
            parts.append(_part(table, periode, f, [*daily, jour < _date("premier")]))
    else:
        parts.append(_part(table, periode, f, daily))
    both = (sa.union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    group: list[Any] = [both.c.periode] + ([both.c[f.par]] if f.par is not None else [])
    grouping = [sa.func.grouping_sets(*(sa.tuple_(column) for column in group))] if f.separes else group
    return (
        sa.select(*group, *(sa.func.sum(both.c[m]).cast(sa.BigInteger).label(m) for m in f.metriques))
        .group_by(*grouping)
        .order_by(*group)
    )


def _axis_terms(f: Forme, table: Any) -> list[sa.ColumnElement[bool]]:
    """The rows of the question's axis (and value) in a per-axis table; type and priority where it has them."""
    terms = [table.c.axe == sa.bindparam("axe", type_=sa.String)]
    if f.valeur:
        terms.append(table.c.valeur == sa.bindparam("valeur", type_=sa.String))
    if "type" in table.c:
        terms += bound_dimension_terms(f.filtres & {"type", "priorite"}, table)
    return terms


def filter_values(q: Question) -> dict[str, Any]:
    """The filters the question sets, by the names `bound_dimension_terms` binds them."""
    return {name: value for name in FILTRES if (value := getattr(q, name)) is not None}


_STATEMENTS = Shapes(_statement, ("du", "au", "axe", "valeur", "par_axe", "premier", "coupure", *FILTRES))


def _date(name: str) -> sa.BindParameter[date]:
    return sa.bindparam(name, type_=sa.Date)


def bound_dimension_terms(filtres: frozenset[str], table: Any) -> list[sa.ColumnElement[bool]]:
    """The filters set, each bound by name (`questions.dimension_terms` for a statement built once)."""
    terms: list[sa.ColumnElement[bool]] = []
    for name in ("client_id", "equipement_id", "technicien_id"):
        if name in filtres:
            terms.append(table.c[name] == sa.bindparam(name, type_=sa.BigInteger))
    equipement = [
        getattr(EquipementRef, column) == sa.bindparam(name, type_=sa.String)
        for name, column in (("type_equipement", "type"), ("localisation", "localisation"))
        if name in filtres
    ]
    if equipement:
        terms.append(table.c.equipement_id.in_(sa.select(EquipementRef.equipement_id).where(*equipement)))
    for name in ("type", "priorite"):
        if name in filtres:
            terms.append(table.c[name] == sa.bindparam(name, type_=sa.String))
    return terms


def _part(table: Any, periode: Any, f: Forme, terms: list[Any]) -> sa.Select[Any]:
    columns: list[Any] = [periode]
    if f.par is not None:
        if f.par in table.c:
            column = table.c[f.par]
        else:
            column = table.c.valeur_par if "valeur_par" in table.c else table.c.valeur.cast(sa.BigInteger)
        columns.append(column.label(f.par))
    return sa.select(*columns, *(table.c[m] for m in f.metriques)).where(*terms)


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
