"""Queries of the replicas of other services' facts: users, equipment, interventions (a technician's
workload and schedule come from the interventions replica)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.replicas import Replica, not_older, upsert_if_newer
from mif_common.statements import Statement
from mif_planning.models import (
    INTERVENTION_EN_COURS,
    INTERVENTION_OUVERTE,
    INTERVENTION_RESOLUE,
    EquipementRef,
    InterventionRef,
    UserRef,
)
from mif_planning.schemas import EquipementFact, UserFact


async def user_ref(session: AsyncSession, user_id: int) -> UserRef | None:
    return await session.get(UserRef, user_id, populate_existing=True)


async def upsert_user_ref(session: AsyncSession, *, fact: UserFact, synced_at: datetime) -> bool:
    """Insert or update a user, unless the replica holds later news (by auth's clock: the event's time
    or the user's `updated_at`); False when stale."""
    values = {**fact.model_dump(), "synced_at": synced_at}
    return await upsert_if_newer(session, UserRef, key=UserRef.user_id, freshness=UserRef.synced_at, values=values)


async def equipement_ref(session: AsyncSession, equipement_id: int) -> EquipementRef | None:
    return await session.get(EquipementRef, equipement_id, populate_existing=True)


async def equipement_noms(session: AsyncSession, ids: Collection[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(EquipementRef.equipement_id, EquipementRef.nom).where(EquipementRef.equipement_id.in_(ids))
    )
    return {r.equipement_id: r.nom for r in rows}


# Newer by assets' clock, the version breaking a tie (a read-through answer is version 0).
EQUIPEMENTS = Replica(
    EquipementRef,
    key="equipement_id",
    newer=lambda table, excluded: sa.or_(
        table.c.updated_at < excluded.updated_at,
        sa.and_(table.c.updated_at == excluded.updated_at, table.c.version <= excluded.version),
    ),
)


async def upsert_equipement_ref(session: AsyncSession, *, fact: EquipementFact, supprime: bool) -> bool:
    """Insert or update an equipment unless the replica holds a later state; False when stale."""
    return await EQUIPEMENTS.upsert(session, {**fact.model_dump(), "supprime": supprime}) is not None


# First-seen and start/end times are kept once known.
INTERVENTIONS = Replica(
    InterventionRef,
    key="intervention_id",
    newer=not_older("occurred_at"),
    merge={
        "created_at": lambda table, excluded: sa.func.least(table.c.created_at, excluded.created_at),
        "started_at": lambda table, excluded: sa.func.coalesce(table.c.started_at, excluded.started_at),
        "ended_at": lambda table, excluded: sa.case(
            # Constants, not an expanding IN list: the statement is compiled once for every call.
            (
                excluded.statut.in_([sa.literal(s) for s in INTERVENTION_RESOLUE]),
                sa.func.coalesce(table.c.ended_at, excluded.ended_at),
            ),
            else_=None,
        ),
    },
)


async def record_intervention(session: AsyncSession, *, values: dict[str, Any]) -> tuple[bool, Any]:
    """Insert or update one intervention unless the replica already holds a later fact, in one round
    trip with the row locked first: (whether it was written, the row's (technicien_id, statut) before,
    or None when it is new)."""
    return await INTERVENTIONS.upsert_seeing_previous(session, values, previous=("technicien_id", "statut"))


_EN_COURS = Statement(
    lambda: sa.select(
        sa.exists().where(
            InterventionRef.technicien_id == sa.bindparam("technicien_id", type_=sa.BigInteger()),
            InterventionRef.statut == INTERVENTION_EN_COURS,
        )
    ),
    ["technicien_id"],
)


async def has_intervention_en_cours(session: AsyncSession, technicien_id: int) -> bool:
    rows = await _EN_COURS.fetch(await session.connection(), {"technicien_id": technicien_id})
    return bool(rows[0][0])


async def workloads(session: AsyncSession, technicien_ids: Collection[int]) -> dict[int, int]:
    """Open interventions assigned to each technician (absent: none)."""
    if not technicien_ids:
        return {}
    rows = await session.execute(
        sa.select(InterventionRef.technicien_id, sa.func.count())
        .where(
            InterventionRef.technicien_id.in_(technicien_ids),
            InterventionRef.statut.in_(INTERVENTION_OUVERTE),
        )
        .group_by(InterventionRef.technicien_id)
    )
    return {int(tid): int(n) for tid, n in rows if tid is not None}


async def interventions_on_equipement(session: AsyncSession, equipement_id: int) -> dict[int, int]:
    """How many interventions each technician had on one equipment (any statut)."""
    rows = await session.execute(
        sa.select(InterventionRef.technicien_id, sa.func.count())
        .where(InterventionRef.equipement_id == equipement_id, InterventionRef.technicien_id.is_not(None))
        .group_by(InterventionRef.technicien_id)
    )
    return {int(tid): int(n) for tid, n in rows if tid is not None}


def assigned_interventions_query(
    *, technicien_id: int | None, start: datetime, end: datetime
) -> sa.Select[InterventionRef]:
    """Assigned, not cancelled interventions whose time span meets [start, end)."""
    debut = sa.func.coalesce(InterventionRef.started_at, InterventionRef.created_at)
    fin = sa.func.coalesce(InterventionRef.ended_at, InterventionRef.date_limite, debut)
    query = sa.select(InterventionRef).where(
        InterventionRef.technicien_id.is_not(None),
        InterventionRef.statut != "annulee",
        debut < end,
        sa.or_(fin >= start, InterventionRef.statut.in_(INTERVENTION_OUVERTE)),
    )
    if technicien_id is not None:
        query = query.where(InterventionRef.technicien_id == technicien_id)
    return query.order_by(debut, InterventionRef.intervention_id)
