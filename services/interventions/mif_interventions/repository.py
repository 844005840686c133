"""Queries of the interventions service."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.replicas import upsert_if_newer
from mif_interventions.models import (
    OPEN_STATUTS,
    Commentaire,
    EquipementRef,
    Historique,
    IdempotencyKey,
    Intervention,
    TechnicienRef,
    UserRef,
)

# --- visibility and filters ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visibilite:
    """Which interventions a caller may see: all (managers), one organisation's (a client user), those
    assigned to one technician, or none (a technician without a profile in the replica)."""

    client_id: int | None = None
    technicien_id: int | None = None
    rien: bool = False

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        if self.rien:
            return [sa.false()]
        out: list[sa.ColumnElement[bool]] = []
        if self.client_id is not None:
            out.append(Intervention.client_id == self.client_id)
        if self.technicien_id is not None:
            out.append(Intervention.technicien_id == self.technicien_id)
        return out

    def allows(self, intervention: Intervention) -> bool:
        if self.rien:
            return False
        if self.client_id is not None and intervention.client_id != self.client_id:
            return False
        return self.technicien_id is None or intervention.technicien_id == self.technicien_id


@dataclass(frozen=True, slots=True)
class Filtres:
    statut: Sequence[str] = ()
    priorite: Sequence[str] = ()
    type: Sequence[str] = ()
    urgence: bool | None = None
    technicien_id: int | None = None
    equipement_id: int | None = None
    client_id: int | None = None
    planning_id: int | None = None
    en_retard: bool | None = None
    date_creation_min: datetime | None = None
    date_creation_max: datetime | None = None
    date_limite_min: datetime | None = None
    date_limite_max: datetime | None = None
    q: str | None = None
    now: datetime | None = field(default=None, compare=False)


_WORD = re.compile(r"\w+", re.UNICODE)


def tsquery_text(q: str) -> str | None:
    """`q` as a to_tsquery() string: every word must match, each as a prefix (`compres` finds
    `compresseur`). Only word characters pass, so nothing in `q` is tsquery syntax."""
    words = _WORD.findall(q)[:12]
    return " & ".join(f"{w}:*" for w in words) if words else None


def late_clause(now: datetime | sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return sa.and_(Intervention.date_limite < now, Intervention.statut.in_([s.value for s in OPEN_STATUTS]))


def where_clauses(filtres: Filtres, visibilite: Visibilite) -> list[sa.ColumnElement[bool]]:
    clauses = visibilite.clauses()
    f = filtres
    if f.statut:
        clauses.append(Intervention.statut.in_(list(f.statut)))
    if f.priorite:
        clauses.append(Intervention.priorite.in_(list(f.priorite)))
    if f.type:
        clauses.append(Intervention.type.in_(list(f.type)))
    if f.urgence is not None:
        clauses.append(Intervention.urgence.is_(f.urgence))
    for column, value in (
        (Intervention.technicien_id, f.technicien_id),
        (Intervention.equipement_id, f.equipement_id),
        (Intervention.client_id, f.client_id),
        (Intervention.planning_id, f.planning_id),
    ):
        if value is not None:
            clauses.append(column == value)
    if f.en_retard is not None:
        late = late_clause(f.now or sa.func.now())
        clauses.append(late if f.en_retard else sa.not_(sa.func.coalesce(late, False)))
    if f.date_creation_min is not None:
        clauses.append(Intervention.date_creation >= f.date_creation_min)
    if f.date_creation_max is not None:
        clauses.append(Intervention.date_creation <= f.date_creation_max)
    if f.date_limite_min is not None:
        clauses.append(Intervention.date_limite >= f.date_limite_min)
    if f.date_limite_max is not None:
        clauses.append(Intervention.date_limite <= f.date_limite_max)
    if f.q is not None:
        query = tsquery_text(f.q)
        if query is None:
            clauses.append(sa.false())
        else:
            clauses.append(
                Intervention.search_vector.op("@@")(sa.func.to_tsquery(sa.literal_column("'french'"), query))
            )
    return clauses


# Bookkeeping columns the API does not show.
_INTERNAL_COLUMNS = frozenset(
    {"search_vector", "late_notified_at", "occurrence_key", "created_by_role", "date_limite_sla"}
)
# What a list row and a single read show: the intervention plus the replicas' names.
LIST_COLUMNS: tuple[Any, ...] = (
    *(c for c in Intervention.__table__.c if c.name not in _INTERNAL_COLUMNS),
    TechnicienRef.full_name.label("technicien_full_name"),
    EquipementRef.nom.label("equipement_nom"),
)


def _joined(query: sa.Select[Any]) -> sa.Select[Any]:
    return query.outerjoin(TechnicienRef, TechnicienRef.technicien_id == Intervention.technicien_id).outerjoin(
        EquipementRef, EquipementRef.id == Intervention.equipement_id
    )


# Built once: requests only add their WHERE, ORDER BY and LIMIT (coercing ~40 columns per request costs).
LIST_SELECT = _joined(sa.select(*LIST_COLUMNS).select_from(Intervention))


async def count_interventions(session: AsyncSession, clauses: Sequence[sa.ColumnElement[bool]]) -> int:
    total = await session.scalar(sa.select(sa.func.count()).select_from(Intervention).where(*clauses))
    return int(total or 0)


async def page_and_total(
    session: AsyncSession,
    clauses: Sequence[sa.ColumnElement[bool]],
    *,
    order: Sequence[Any],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page and the total, in one round trip: the count rides along as an uncorrelated scalar
    subquery (evaluated once). Past the last page, the total is counted on its own."""
    total = sa.select(sa.func.count()).select_from(Intervention).where(*clauses).scalar_subquery().correlate(None)
    query = LIST_SELECT.add_columns(total.label("_total")).where(*clauses)
    result = await session.execute(query.order_by(*order).limit(limit).offset(offset))
    keys = list(result.keys())[:-1]  # the last column is the total
    raw = result.all()
    rows = [dict(zip(keys, row[:-1], strict=True)) for row in raw]  # much cheaper than RowMapping
    if raw:
        return rows, int(raw[0][-1])
    return rows, 0 if offset == 0 else await count_interventions(session, clauses)


async def row_of(session: AsyncSession, intervention_id: int) -> dict[str, Any] | None:
    query = LIST_SELECT.where(Intervention.id == intervention_id)
    row = (await session.execute(query)).mappings().one_or_none()
    return dict(row) if row is not None else None


async def intervention_by_id(
    session: AsyncSession, intervention_id: int, *, for_update: bool = False
) -> Intervention | None:
    query = sa.select(Intervention).where(Intervention.id == intervention_id)
    if for_update:
        # A locked read always sees the committed row, never a stale object of the identity map.
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


# --- history and comments -----------------------------------------------------------------------


def historique_query(intervention_id: int) -> sa.Select[Any]:
    return sa.select(Historique).where(Historique.intervention_id == intervention_id)


def commentaires_query(intervention_id: int) -> sa.Select[Any]:
    return sa.select(Commentaire).where(Commentaire.intervention_id == intervention_id)


# --- idempotency --------------------------------------------------------------------------------


async def claim_idempotency_key(session: AsyncSession, *, user_id: int, key: str, request_sha256: str) -> bool:
    """Record the key; False when it already exists. A concurrent claim of the same key waits for this
    transaction (the unique index), then sees its outcome."""
    claimed = await session.scalar(
        pg_insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_sha256=request_sha256)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    return claimed is not None


async def idempotency_key(session: AsyncSession, *, user_id: int, key: str) -> IdempotencyKey | None:
    return await session.get(IdempotencyKey, (user_id, key), populate_existing=True)


async def set_idempotency_result(session: AsyncSession, *, user_id: int, key: str, intervention_id: int) -> None:
    await session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(intervention_id=intervention_id)
    )


async def purge_idempotency_keys(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


# --- lateness -----------------------------------------------------------------------------------


async def claim_late(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[Intervention]:
    """Open interventions past their deadline not yet announced late, locked; rows another replica
    holds are skipped (it is announcing them)."""
    query = (
        sa.select(Intervention)
        .where(late_clause(now), Intervention.late_notified_at.is_(None))
        .order_by(Intervention.date_limite)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).all()


# --- replicas -----------------------------------------------------------------------------------


async def equipement_ref(session: AsyncSession, equipement_id: int) -> EquipementRef | None:
    return await session.get(EquipementRef, equipement_id, populate_existing=True)


async def upsert_equipement_ref(session: AsyncSession, **values: Any) -> bool:
    """Insert or update unless the replica holds a later version; False when stale."""
    insert = pg_insert(EquipementRef).values(**values)
    upsert = insert.on_conflict_do_update(
        index_elements=[EquipementRef.id],
        set_={k: insert.excluded[k] for k in values if k != "id"},
        where=EquipementRef.version <= insert.excluded.version,
    ).returning(EquipementRef.id)
    return await session.scalar(upsert) is not None


async def delete_equipement_ref(session: AsyncSession, *, equipement_id: int, version: int) -> None:
    await session.execute(
        sa.delete(EquipementRef).where(EquipementRef.id == equipement_id, EquipementRef.version <= version)
    )


async def fill_client_of_equipement(session: AsyncSession, *, equipement_id: int, client_id: int | None) -> None:
    """Interventions created before their equipment was known (plan occurrences) get its organisation."""
    if client_id is None:
        return
    await session.execute(
        sa.update(Intervention)
        .where(Intervention.equipement_id == equipement_id, Intervention.client_id.is_(None))
        .values(client_id=client_id)
    )


async def technicien_ref(session: AsyncSession, technicien_id: int) -> TechnicienRef | None:
    return await session.get(TechnicienRef, technicien_id, populate_existing=True)


async def technicien_of_user(session: AsyncSession, user_id: int) -> int | None:
    return await session.scalar(
        sa.select(TechnicienRef.technicien_id)
        .where(TechnicienRef.user_id == user_id)
        .order_by(TechnicienRef.is_active.desc(), TechnicienRef.technicien_id)
        .limit(1)
    )


async def upsert_technicien_ref(session: AsyncSession, **values: Any) -> bool:
    return await upsert_if_newer(
        session, TechnicienRef, key=TechnicienRef.technicien_id, freshness=TechnicienRef.version, values=values
    )


async def upsert_user_ref(session: AsyncSession, **values: Any) -> bool:
    return await upsert_if_newer(session, UserRef, key=UserRef.user_id, freshness=UserRef.event_time, values=values)
