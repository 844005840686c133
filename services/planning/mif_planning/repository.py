"""Queries of the planning service on what it owns: competences, technicians, plans and their history.

The queries of the replicas are in `replicas_repository`, those of plan occurrences and the scheduler's
claims in `occurrences_repository`."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.listing import ListQuery, like_pattern, model_columns
from mif_common.pagination import Sortable
from mif_common.statements import Statement
from mif_planning.models import (
    STATUTS_GENERATEURS,
    Competence,
    Plan,
    PlanHistorique,
    Technicien,
    TechnicienCompetence,
    UserRef,
)
from mif_planning.schemas import CompetenceOut


async def competence_by_id(session: AsyncSession, competence_id: int, *, for_update: bool = False) -> Competence | None:
    query = sa.select(Competence).where(Competence.id == competence_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def competences_by_ids(session: AsyncSession, ids: Collection[int]) -> dict[int, Competence]:
    if not ids:
        return {}
    rows = await session.scalars(sa.select(Competence).where(Competence.id.in_(ids)))
    return {c.id: c for c in rows}


async def competence_named(session: AsyncSession, nom: str, *, except_id: int | None = None) -> Competence | None:
    query = sa.select(Competence).where(sa.func.lower(Competence.nom) == nom.lower())
    if except_id is not None:
        query = query.where(Competence.id != except_id)
    return await session.scalar(query)


async def competence_for_type(session: AsyncSession, equipement_type: str) -> Competence | None:
    """The competence an equipment type calls for: the one named like the type, else the one whose
    domain is the type (case-insensitive; the lowest id when several share that domain)."""
    label = equipement_type.strip().lower()
    named = sa.func.lower(Competence.nom) == label  # at most one: names are unique, case-insensitively
    return await session.scalar(
        sa.select(Competence)
        .where(sa.or_(named, sa.func.lower(Competence.domaine) == label))
        .order_by(named.desc(), Competence.id)
        .limit(1)
    )


def competences_list(sort: Mapping[str, Sortable]) -> ListQuery:
    """The competences list (mif_common.listing): rows as `CompetenceOut`'s fields. `q` has no index to
    find its matches with (a scan either way), hence no `search`."""
    text = sa.func.concat_ws(" ", Competence.nom, Competence.domaine, Competence.description)
    return ListQuery(
        columns=model_columns(CompetenceOut, Competence),
        source=Competence,
        key=Competence.id,
        terms={
            "domaine": lambda: sa.func.lower(Competence.domaine) == sa.bindparam("domaine", type_=sa.String()),
            "q": lambda: text.ilike(sa.bindparam("q", type_=sa.String()), escape="\\"),
        },
        sort=sort,
        default=[Competence.id],
        search=(),
    )


def competences_terms(*, domaine: str | None, q: str | None) -> dict[str, Any]:
    terms: dict[str, Any] = {}
    if domaine is not None:
        terms["domaine"] = domaine.lower()
    if q is not None:
        terms["q"] = like_pattern(q)
    return terms


async def competence_holders(session: AsyncSession, competence_id: int) -> list[int]:
    """Ids of the technicians holding a competence."""
    rows = await session.scalars(
        sa.select(TechnicienCompetence.technicien_id).where(TechnicienCompetence.competence_id == competence_id)
    )
    return list(rows)


async def technicien_by_id(session: AsyncSession, technicien_id: int, *, for_update: bool = False) -> Technicien | None:
    query = sa.select(Technicien).where(Technicien.id == technicien_id)
    if for_update:
        # Locked reads always see the committed row, never a stale object of the identity map.
        query = query.with_for_update(of=Technicien).execution_options(populate_existing=True)
    return await session.scalar(query)


async def technicien_of_user(session: AsyncSession, user_id: int, *, for_update: bool = False) -> Technicien | None:
    query = sa.select(Technicien).where(Technicien.user_id == user_id)
    if for_update:
        query = query.with_for_update(of=Technicien).execution_options(populate_existing=True)
    return await session.scalar(query)


async def technicien_by_token_hash(session: AsyncSession, token_hash: str) -> Technicien | None:
    return await session.scalar(sa.select(Technicien).where(Technicien.ical_token_hash == token_hash))


async def lock_techniciens(session: AsyncSession, ids: Collection[int]) -> list[Technicien]:
    """Lock technicians in id order (no deadlock between two transactions locking the same ones)."""
    if not ids:
        return []
    rows = await session.scalars(
        sa.select(Technicien)
        .where(Technicien.id.in_(ids))
        .order_by(Technicien.id)
        .with_for_update(of=Technicien)
        .execution_options(populate_existing=True)
    )
    return list(rows.unique())


async def lock_disponibilites(session: AsyncSession, ids: Collection[int]) -> list[Any]:
    """(id, is_active, disponibilite) of technicians, locked in id order: what deciding their
    availability needs, without loading the profiles."""
    if not ids:
        return []
    return await _DISPONIBILITES_LOCKED.fetch(await session.connection(), {"ids": sorted(ids)})


_DISPONIBILITES_LOCKED = Statement(
    lambda: (
        sa.select(Technicien.id, Technicien.is_active, Technicien.disponibilite)
        .where(Technicien.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger()))))
        .order_by(Technicien.id)
        .with_for_update()
    ),
    ["ids"],
)


def techniciens_query(
    *,
    only_id: int | None,
    disponibilite: Sequence[str],
    equipe: str | None,
    zone: str | None,
    competence_id: int | None,
    is_active: bool | None,
    q: str | None,
) -> sa.Select[Technicien]:
    """The technician list; `only_id` restricts it to one profile (a technician's own)."""
    query = sa.select(Technicien).join(Technicien.user)
    if only_id is not None:
        query = query.where(Technicien.id == only_id)
    if disponibilite:
        query = query.where(Technicien.disponibilite.in_(disponibilite))
    if equipe is not None:
        query = query.where(sa.func.lower(Technicien.equipe) == equipe.lower())
    if zone is not None:
        query = query.where(sa.func.lower(Technicien.zone) == zone.lower())
    if competence_id is not None:
        query = query.where(
            sa.exists().where(
                TechnicienCompetence.technicien_id == Technicien.id,
                TechnicienCompetence.competence_id == competence_id,
            )
        )
    if is_active is not None:
        query = query.where(Technicien.is_active.is_(is_active))
    if q is not None:
        text = sa.func.concat_ws(
            " ", UserRef.username, UserRef.full_name, UserRef.email, Technicien.equipe, Technicien.zone
        )
        query = query.where(text.ilike(like_pattern(q), escape="\\"))
    return query


async def candidate_techniciens(session: AsyncSession, disponibilites: Sequence[str]) -> list[Technicien]:
    """Active technicians of active technician users, in the given availabilities."""
    rows = await session.scalars(
        sa.select(Technicien)
        .join(Technicien.user)
        .where(
            Technicien.is_active.is_(True),
            Technicien.disponibilite.in_(disponibilites),
            UserRef.is_active.is_(True),
            UserRef.role == "technicien",
        )
        .order_by(Technicien.id)
    )
    return list(rows.unique())


async def techniciens_by_ids(session: AsyncSession, ids: Collection[int]) -> dict[int, Technicien]:
    if not ids:
        return {}
    rows = await session.scalars(sa.select(Technicien).where(Technicien.id.in_(ids)))
    return {t.id: t for t in rows.unique()}


async def plan_by_id(session: AsyncSession, plan_id: int, *, for_update: bool = False) -> Plan | None:
    query = sa.select(Plan).where(Plan.id == plan_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


def plans_query(
    *,
    only_technicien_id: int | None,
    statut: Sequence[str],
    frequence: str | None,
    equipement_id: int | None,
    technicien_id: int | None,
    due_before: datetime | None,
) -> sa.Select[Plan]:
    query = sa.select(Plan)
    if only_technicien_id is not None:
        query = query.where(Plan.technicien_id == only_technicien_id)
    if statut:
        query = query.where(Plan.statut.in_(statut))
    if frequence is not None:
        query = query.where(Plan.frequence == frequence)
    if equipement_id is not None:
        query = query.where(Plan.equipement_id == equipement_id)
    if technicien_id is not None:
        query = query.where(Plan.technicien_id == technicien_id)
    if due_before is not None:
        query = query.where(Plan.prochaine_date <= due_before)
    return query


async def plans_of_equipement(session: AsyncSession, equipement_id: int, statuts: Sequence[str]) -> list[Plan]:
    rows = await session.scalars(
        sa.select(Plan)
        .where(Plan.equipement_id == equipement_id, Plan.statut.in_(statuts))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


def plans_in_window_query(*, technicien_id: int | None, end: datetime) -> sa.Select[Plan]:
    """Generating plans whose next occurrence comes before `end` (the schedule projects them)."""
    query = sa.select(Plan).where(Plan.statut.in_(STATUTS_GENERATEURS), Plan.prochaine_date < end)
    if technicien_id is not None:
        query = query.where(Plan.technicien_id == technicien_id)
    return query.order_by(Plan.id)


def usage_plans_query(*, technicien_id: int | None) -> sa.Select[Plan]:
    """Generating usage plans (the schedule shows their next crossing at its forecast date)."""
    query = sa.select(Plan).where(Plan.statut.in_(STATUTS_GENERATEURS), Plan.declencheur == "usage")
    if technicien_id is not None:
        query = query.where(Plan.technicien_id == technicien_id)
    return query.order_by(Plan.id)


async def add_historique(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows to plans' history (one statement, its parameters apart)."""
    if rows:
        await session.execute(sa.insert(PlanHistorique), list(rows))


def historique_query(planning_id: int) -> sa.Select[PlanHistorique]:
    return sa.select(PlanHistorique).where(PlanHistorique.planning_id == planning_id)
