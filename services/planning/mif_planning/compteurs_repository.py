"""Queries of the meters replica (`compteur_ref`), their recent readings (`releve_ref`) and the rules
that watch them (plans whose `declencheur` is usage, seuil or variation)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.replicas import Replica
from mif_planning.models import CompteurRef, Plan, ReleveRef, StatutPlan
from mif_planning.regles_schemas import CompteurFact, RelevesFact

# A placeholder row (a meter first seen in a readings event) is older than any real snapshot.
PLACEHOLDER_TIME = datetime(1970, 1, 1, tzinfo=UTC)

# Newer by assets' clock, the version breaking a tie; the usage state columns are never in a snapshot.
COMPTEURS = Replica(
    CompteurRef,
    key="compteur_id",
    newer=lambda table, excluded: sa.or_(
        table.c.updated_at < excluded.updated_at,
        sa.and_(table.c.updated_at == excluded.updated_at, table.c.version <= excluded.version),
    ),
)


async def upsert_compteur_ref(session: AsyncSession, *, fact: CompteurFact, supprime: bool) -> bool:
    """Insert or update a meter unless the replica holds a later state; False when stale."""
    return await COMPTEURS.upsert(session, {**fact.model_dump(), "supprime": supprime}) is not None


async def lock_compteur(session: AsyncSession, fact: RelevesFact) -> CompteurRef:
    """The meter of a readings batch, locked (its usage state is read and moved); a placeholder is
    created from the batch's own description when the meter's snapshot has not arrived yet."""
    query = (
        sa.select(CompteurRef)
        .where(CompteurRef.compteur_id == fact.compteur_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    # The meter is known but for its first batch: one round trip in the common case.
    compteur = await session.scalar(query)
    if compteur is None:
        await session.execute(
            pg_insert(CompteurRef)
            .values(
                compteur_id=fact.compteur_id,
                equipement_id=fact.equipement_id,
                code=fact.code,
                nom=fact.code,
                nature=fact.nature,
                unite=fact.unite,
                version=0,
                updated_at=PLACEHOLDER_TIME,
            )
            .on_conflict_do_nothing(index_elements=["compteur_id"])
        )
        compteur = await session.scalar(query)
    assert compteur is not None  # inserted above when missing
    return compteur


async def compteur_ref(session: AsyncSession, compteur_id: int) -> CompteurRef | None:
    return await session.get(CompteurRef, compteur_id, populate_existing=True)


async def compteurs_by_ids(session: AsyncSession, ids: Collection[int]) -> dict[int, CompteurRef]:
    if not ids:
        return {}
    rows = await session.scalars(sa.select(CompteurRef).where(CompteurRef.compteur_id.in_(ids)))
    return {c.compteur_id: c for c in rows}


async def rules_of_compteur(session: AsyncSession, compteur_id: int) -> list[Plan]:
    """The rules on a meter that are not ended, locked in id order (after the meter: the order of every
    evaluation of a batch; the API locks a plan alone)."""
    rows = await session.scalars(
        sa.select(Plan)
        .where(Plan.compteur_id == compteur_id, Plan.statut != StatutPlan.termine.value)
        .order_by(Plan.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def end_rules_of_compteur(session: AsyncSession, compteur_id: int, *, at: datetime) -> None:
    """A deleted meter ends the rules watching it (`termine`)."""
    await session.execute(
        sa.update(Plan)
        .where(Plan.compteur_id == compteur_id, Plan.statut != StatutPlan.termine.value)
        .values(statut=StatutPlan.termine.value, date_modification=at)
        .execution_options(synchronize_session=False)
    )


async def add_releves(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store readings (compteur_id, horodatage, valeur, usage); one already stored is kept."""
    if rows:
        insert = pg_insert(ReleveRef).on_conflict_do_nothing(index_elements=["compteur_id", "horodatage"])
        await session.execute(insert, list(rows))


async def prune_releves(session: AsyncSession, compteur_id: int, *, before: datetime) -> None:
    await session.execute(
        sa.delete(ReleveRef).where(ReleveRef.compteur_id == compteur_id, ReleveRef.horodatage < before)
    )


async def releves_between(
    session: AsyncSession, compteur_id: int, *, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """(horodatage, usage) of a meter's stored readings in [start, end], oldest first."""
    rows = await session.execute(
        sa.select(ReleveRef.horodatage, ReleveRef.usage)
        .where(ReleveRef.compteur_id == compteur_id, ReleveRef.horodatage >= start, ReleveRef.horodatage <= end)
        .order_by(ReleveRef.horodatage)
    )
    return [(r.horodatage, r.usage) for r in rows]


@dataclass(frozen=True)
class Ajustement:
    """A least-squares line usage = pente × jours + origine (days since the Unix epoch), fitted over
    `nombre` readings."""

    pente: float  # usage per day
    origine: float
    nombre: int


# x in days since the epoch: PostgreSQL's regr_* aggregates are numerically stable (Youngs-Cramer).
_JOURS = sa.extract("epoch", ReleveRef.horodatage) / 86400.0


async def ajustements(session: AsyncSession, compteur_ids: Collection[int], *, jours: int) -> dict[int, Ajustement]:
    """The least-squares fit of each meter's usage against time over the `jours` days behind its latest
    stored reading: one statement for all the meters (a plan list's usage plans)."""
    if not compteur_ids:
        return {}
    latest = (
        sa.select(ReleveRef.compteur_id, sa.func.max(ReleveRef.horodatage).label("dernier"))
        .where(ReleveRef.compteur_id.in_(compteur_ids))
        .group_by(ReleveRef.compteur_id)
        .subquery()
    )
    rows = await session.execute(
        sa.select(
            ReleveRef.compteur_id,
            sa.func.regr_slope(ReleveRef.usage, _JOURS).label("pente"),
            sa.func.regr_intercept(ReleveRef.usage, _JOURS).label("origine"),
            sa.func.count().label("nombre"),
        )
        .join(latest, latest.c.compteur_id == ReleveRef.compteur_id)
        .where(ReleveRef.horodatage >= latest.c.dernier - sa.func.make_interval(0, 0, 0, jours))
        .group_by(ReleveRef.compteur_id)
    )
    return {
        r.compteur_id: Ajustement(pente=float(r.pente), origine=float(r.origine), nombre=int(r.nombre))
        for r in rows
        if r.pente is not None and r.origine is not None
    }
