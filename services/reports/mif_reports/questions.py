"""A KPI question: its period, bucket size and filters, once narrowed to what the caller may see
(scope.py), and the buckets it covers. The KPIs (kpis.py), the sums they read (sums.py), the lists and
the reports answer the same `Question`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from mif_common.datetimes import now
from mif_reports.models import EquipementRef

Pas = Literal["jour", "semaine", "mois"]
TRUNC: dict[str, str] = {"jour": "day", "semaine": "week", "mois": "month"}


@dataclass(frozen=True, slots=True)
class Question:
    """A KPI question once scoped: the period (dates, inclusive, company time zone), the bucket size and
    the filters. A scope that can see nothing sets `rien` (every figure is then empty)."""

    du: date
    au: date
    pas: Pas
    fuseau: ZoneInfo
    client_id: int | None = None
    equipement_id: int | None = None
    type_equipement: str | None = None
    localisation: str | None = None
    technicien_id: int | None = None
    type: str | None = None
    priorite: str | None = None
    rien: bool = False

    @property
    def fine(self) -> bool:
        """Whether the question needs the per-dimension sums (else the per-day totals answer it)."""
        return any(
            v is not None
            for v in (self.client_id, self.equipement_id, self.type_equipement, self.localisation, self.technicien_id)
        )

    def start(self) -> datetime:
        return datetime.combine(self.du, time(), self.fuseau)

    def end(self) -> datetime:
        """The period's end, never after now."""
        return min(datetime.combine(self.au + timedelta(days=1), time(), self.fuseau), now())


def equipement_filter(q: Question) -> sa.ColumnElement[bool] | None:
    terms = []
    if q.type_equipement is not None:
        terms.append(EquipementRef.type == q.type_equipement)
    if q.localisation is not None:
        terms.append(EquipementRef.localisation == q.localisation)
    return sa.and_(*terms) if terms else None


def dimension_terms(q: Question, table: Any) -> list[sa.ColumnElement[bool]]:
    terms: list[sa.ColumnElement[bool]] = []
    if q.client_id is not None:
        terms.append(table.c.client_id == q.client_id)
    if q.equipement_id is not None:
        terms.append(table.c.equipement_id == q.equipement_id)
    if q.technicien_id is not None:
        terms.append(table.c.technicien_id == q.technicien_id)
    equipement = equipement_filter(q)
    if equipement is not None:
        terms.append(table.c.equipement_id.in_(sa.select(EquipementRef.equipement_id).where(equipement)))
    if q.type is not None:
        terms.append(table.c.type == q.type)
    if q.priorite is not None:
        terms.append(table.c.priorite == q.priorite)
    return terms


def buckets(q: Question) -> list[date]:
    """The first day of every bucket the period touches."""
    first = q.du
    if q.pas == "semaine":
        first = q.du - timedelta(days=q.du.weekday())
    elif q.pas == "mois":
        first = q.du.replace(day=1)
    out = []
    current = first
    while current <= q.au:
        out.append(current)
        if q.pas == "jour":
            current += timedelta(days=1)
        elif q.pas == "semaine":
            current += timedelta(days=7)
        else:
            current = (current.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def next_bucket(q: Question, bucket: date) -> date:
    if q.pas == "jour":
        return bucket + timedelta(days=1)
    if q.pas == "semaine":
        return bucket + timedelta(days=7)
    return (bucket.replace(day=28) + timedelta(days=4)).replace(day=1)
