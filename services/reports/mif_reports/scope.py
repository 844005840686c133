"""A KPI or export question as a caller asked it (`Filtres`) and as it may be answered (`question`):
a client user only ever gets its organisation's figures, a technician those of its own interventions,
a manager everything (DOMAIN.md §1, §11)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import Query
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal, Role
from mif_common.errors import Forbidden, Unprocessable
from mif_common.params import MAX_ID
from mif_reports.models import TechnicienRef
from mif_reports.questions import Pas, Question, buckets

MAX_BUCKETS = 1_000
MAX_YEARS = 10
# Far enough for any maintenance history, near enough that a bucket's end never overflows a date.
MIN_YEAR, MAX_YEAR = 1970, 2200

_Id = Annotated[int | None, Query(gt=0, le=MAX_ID)]
_Text = Annotated[str | None, Query(min_length=1, max_length=255)]


@dataclass(frozen=True, slots=True)
class Filtres:
    """The period and filters of a KPI question, as query parameters."""

    du: date | None = None
    au: date | None = None
    pas: Pas = "mois"
    client_id: int | None = None
    equipement_id: int | None = None
    type_equipement: str | None = None
    localisation: str | None = None
    technicien_id: int | None = None
    type: str | None = None
    priorite: str | None = None


async def filtres(
    du: Annotated[
        date | None, Query(description="First day (inclusive); default: the first of the month 11 months ago.")
    ] = None,
    au: Annotated[date | None, Query(description="Last day (inclusive); default: today.")] = None,
    pas: Annotated[Pas, Query(description="Bucket size of the series.")] = "mois",
    client_id: _Id = None,
    equipement_id: _Id = None,
    type_equipement: Annotated[_Text, Query(description="The equipment's type (assets).")] = None,
    localisation: _Text = None,
    technicien_id: _Id = None,
    type: Annotated[str | None, Query(pattern="^(corrective|preventive|ameliorative|diagnostic)$")] = None,
    priorite: Annotated[str | None, Query(pattern="^(urgente|haute|normale|basse|programmee)$")] = None,
) -> Filtres:
    return Filtres(du, au, pas, client_id, equipement_id, type_equipement, localisation, technicien_id, type, priorite)


def today(fuseau: ZoneInfo) -> date:
    return datetime.now(fuseau).date()


def default_period(fuseau: ZoneInfo) -> tuple[date, date]:
    au = today(fuseau)
    first = au.replace(day=1)
    for _ in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return first, au


async def question(session: AsyncSession, principal: Principal, f: Filtres, fuseau: ZoneInfo) -> Question:
    """The question narrowed to the caller's scope; 403 when it names what the caller may not see."""
    default_du, default_au = default_period(fuseau)
    au = f.au or default_au
    du = f.du or (default_du if f.au is None else au.replace(day=1))
    if du > au:
        raise Unprocessable("`du` must not be after `au`.")
    if du.year < MIN_YEAR or au.year > MAX_YEAR:
        raise Unprocessable(f"Dates run from {MIN_YEAR} to {MAX_YEAR}.")
    if (au - du).days > MAX_YEARS * 366:
        raise Unprocessable(f"A period covers at most {MAX_YEARS} years.")
    client_id, technicien_id, rien = f.client_id, f.technicien_id, False
    organisation = principal.organisation()
    if organisation is not None:
        if client_id not in (None, organisation):
            raise Forbidden("A client user sees its own organisation's figures only.")
        client_id = organisation
    elif principal.role is Role.technicien:
        own = await session.scalar(
            sa.select(TechnicienRef.technicien_id).where(TechnicienRef.user_id == principal.user_id).limit(1)
        )
        if technicien_id is not None and technicien_id != own:
            raise Forbidden("A technician sees the figures of its own interventions only.")
        technicien_id, rien = own, own is None
    q = Question(
        du=du,
        au=au,
        pas=f.pas,
        fuseau=fuseau,
        client_id=client_id,
        equipement_id=f.equipement_id,
        type_equipement=f.type_equipement,
        localisation=f.localisation,
        technicien_id=technicien_id if technicien_id is not None else (-1 if rien else None),
        type=f.type,
        priorite=f.priorite,
        rien=rien,
    )
    if len(buckets(q)) > MAX_BUCKETS:
        raise Unprocessable(f"At most {MAX_BUCKETS} buckets: choose a larger `pas` or a shorter period.")
    return q
