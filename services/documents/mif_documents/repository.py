"""Queries of the documents service."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.listing import like_pattern
from mif_common.replicas import Replica, not_older
from mif_documents.models import Document, InterventionRef, StatutIntervention, TechnicienRef

# --- replicas -----------------------------------------------------------------------------------


async def intervention_ref(
    session: AsyncSession, intervention_id: int, *, for_share: bool = False
) -> InterventionRef | None:
    query = (
        sa.select(InterventionRef)
        .where(InterventionRef.intervention_id == intervention_id)
        .execution_options(populate_existing=True)
    )
    if for_share:
        query = query.with_for_update(read=True)
    return await session.scalar(query)


INTERVENTIONS = Replica(InterventionRef, key="intervention_id", newer=not_older("occurred_at"))


async def upsert_intervention_ref(
    session: AsyncSession,
    *,
    intervention_id: int,
    client_id: int | None,
    technicien_id: int | None,
    statut: str,
    occurred_at: datetime,
) -> bool:
    """Insert or update one replica row unless it already holds a later fact; False when stale."""
    values = {
        "intervention_id": intervention_id,
        "client_id": client_id,
        "technicien_id": technicien_id,
        "statut": statut,
        "occurred_at": occurred_at,
    }
    return await INTERVENTIONS.upsert(session, values) is not None


async def mark_intervention_deleted(session: AsyncSession, *, intervention_id: int, occurred_at: datetime) -> None:
    """Record a deletion (final: later upserts never clear `deleted_at`)."""
    insert = pg_insert(InterventionRef).values(
        intervention_id=intervention_id,
        statut=StatutIntervention.annulee.value,  # unknown until now; nobody sees it anyway
        occurred_at=occurred_at,
        deleted_at=occurred_at,
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[InterventionRef.intervention_id],
            set_={
                "deleted_at": sa.func.coalesce(InterventionRef.deleted_at, insert.excluded.deleted_at),
                "occurred_at": sa.func.greatest(InterventionRef.occurred_at, insert.excluded.occurred_at),
            },
        )
    )


async def technicien_user_id(session: AsyncSession, technicien_id: int) -> int | None:
    return await session.scalar(sa.select(TechnicienRef.user_id).where(TechnicienRef.technicien_id == technicien_id))


# An equal version is the same snapshot again: not rewritten.
TECHNICIENS = Replica(
    TechnicienRef, key="technicien_id", newer=lambda table, excluded: table.c.version < excluded.version
)


async def upsert_technicien_ref(session: AsyncSession, *, technicien_id: int, user_id: int, version: int) -> bool:
    """Keep the newest snapshot of a technician; False when an older or equal version arrives."""
    values = {"technicien_id": technicien_id, "user_id": user_id, "version": version}
    return await TECHNICIENS.upsert(session, values) is not None


def technicien_ids_of(user_id: int) -> sa.Select[int]:
    """The technician profile ids of a user (one, normally)."""
    return sa.select(TechnicienRef.technicien_id).where(TechnicienRef.user_id == user_id)


# --- documents ----------------------------------------------------------------------------------


def documents_query(
    *,
    only_client_id: int | None = None,
    only_technicien_user_id: int | None = None,
    intervention_id: int | None = None,
    categorie: Sequence[str] = (),
    mime: str | None = None,
    uploaded_by: int | None = None,
    q: str | None = None,
) -> sa.Select[Document]:
    """Live documents; the `only_*` arguments apply a caller's row-level rule through the replica."""
    query = sa.select(Document).where(Document.deleted_at.is_(None))
    if only_client_id is not None or only_technicien_user_id is not None:
        query = query.join(InterventionRef, InterventionRef.intervention_id == Document.intervention_id).where(
            InterventionRef.deleted_at.is_(None)
        )
        if only_client_id is not None:
            query = query.where(InterventionRef.client_id == only_client_id)
        if only_technicien_user_id is not None:
            query = query.where(InterventionRef.technicien_id.in_(technicien_ids_of(only_technicien_user_id)))
    if intervention_id is not None:
        query = query.where(Document.intervention_id == intervention_id)
    if categorie:
        query = query.where(Document.categorie.in_(categorie))
    if mime is not None:
        query = query.where(Document.mime == mime)
    if uploaded_by is not None:
        query = query.where(Document.uploaded_by == uploaded_by)
    if q is not None:
        pattern = like_pattern(q)
        query = query.where(
            sa.or_(Document.filename.ilike(pattern, escape="\\"), Document.description.ilike(pattern, escape="\\"))
        )
    return query


async def document_by_id(session: AsyncSession, document_id: int, *, for_update: bool = False) -> Document | None:
    """A live (not deleted) document."""
    query = sa.select(Document).where(Document.id == document_id, Document.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def live_documents_of(session: AsyncSession, intervention_id: int) -> list[Document]:
    query = (
        sa.select(Document)
        .where(Document.intervention_id == intervention_id, Document.deleted_at.is_(None))
        .order_by(Document.id)
        .with_for_update()
    )
    return list((await session.scalars(query)).all())


async def known_storage_keys(session: AsyncSession, keys: Collection[str]) -> set[str]:
    """Which of `keys` a document row still needs (its file not purged yet)."""
    if not keys:
        return set()
    rows = await session.scalars(
        sa.select(Document.storage_key).where(Document.storage_key.in_(list(keys)), Document.purged_at.is_(None))
    )
    return set(rows.all())


async def due_purges(session: AsyncSession, *, now: datetime, limit: int) -> list[Document]:
    """Deleted documents whose file may go now (locked; other replicas skip them)."""
    query = (
        sa.select(Document)
        .where(Document.deleted_at.is_not(None), Document.purged_at.is_(None), Document.purge_after <= now)
        .order_by(Document.purge_after)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


async def needing_rewrap(session: AsyncSession, *, active_key_id: str, limit: int) -> list[Document]:
    """Documents whose file is not (yet) under the active key, locked for re-encryption."""
    query = (
        sa.select(Document)
        .where(Document.purged_at.is_(None), Document.key_id.is_distinct_from(active_key_id))
        .order_by(Document.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())
