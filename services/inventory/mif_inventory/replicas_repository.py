"""Queries of inventory's replicas of other services' data: interventions, technicians, equipment (each
upserted through `mif_common.replicas.Replica`: newest fact wins)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.replicas import Replica, not_older
from mif_inventory.models import EquipementRef, InterventionRef, TechnicienRef

INTERVENTIONS = Replica(InterventionRef, key="intervention_id", newer=not_older("occurred_at"))
# An equal version is the same snapshot again: not rewritten.
TECHNICIENS = Replica(
    TechnicienRef, key="technicien_id", newer=lambda table, excluded: table.c.version < excluded.version
)
EQUIPEMENTS = Replica(EquipementRef, key="equipement_id", newer=not_older("updated_at"))


async def intervention_ref(session: AsyncSession, intervention_id: int) -> InterventionRef | None:
    return await session.scalar(
        sa.select(InterventionRef)
        .where(InterventionRef.intervention_id == intervention_id)
        .execution_options(populate_existing=True)
    )


async def upsert_intervention_ref(
    session: AsyncSession,
    *,
    intervention_id: int,
    equipement_id: int | None,
    client_id: int | None,
    technicien_id: int | None,
    statut: str,
    occurred_at: datetime,
) -> bool:
    """Insert or update one replica row unless it already holds a later fact; False when stale."""
    values = {
        "intervention_id": intervention_id,
        "equipement_id": equipement_id,
        "client_id": client_id,
        "technicien_id": technicien_id,
        "statut": statut,
        "occurred_at": occurred_at,
    }
    return await INTERVENTIONS.upsert(session, values) is not None


async def technicien_user_id(session: AsyncSession, technicien_id: int) -> int | None:
    return await session.scalar(sa.select(TechnicienRef.user_id).where(TechnicienRef.technicien_id == technicien_id))


async def upsert_technicien_ref(session: AsyncSession, *, technicien_id: int, user_id: int, version: int) -> bool:
    values = {"technicien_id": technicien_id, "user_id": user_id, "version": version}
    return await TECHNICIENS.upsert(session, values) is not None


async def equipement_ref(session: AsyncSession, equipement_id: int) -> EquipementRef | None:
    return await session.get(EquipementRef, equipement_id, populate_existing=True)


async def upsert_equipement_ref(
    session: AsyncSession, *, equipement_id: int, type_: str, updated_at: datetime, supprime: bool
) -> bool:
    values = {"equipement_id": equipement_id, "type": type_, "updated_at": updated_at, "supprime": supprime}
    return await EQUIPEMENTS.upsert(session, values) is not None
