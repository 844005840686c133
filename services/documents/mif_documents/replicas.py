"""The documents service's reactions to other services' events (`handlers.py` calls them): the replicas
that decide who sees which documents, and the documents of a deleted intervention."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_common.events import add_event
from mif_documents import repository as repo
from mif_documents.events import DocumentDeleted
from mif_documents.schemas import InterventionFact, InterventionGone, TechnicienFact


async def intervention_changed(session: AsyncSession, *, fact: InterventionFact) -> bool:
    """Any `interventions.intervention.*` fact: keep the replica current (older facts are ignored).
    An archived intervention keeps its documents (read-only)."""
    return await repo.upsert_intervention_ref(
        session,
        intervention_id=fact.intervention_id,
        client_id=fact.client_id,
        technicien_id=fact.technicien_id,
        statut=fact.statut.value,
        occurred_at=fact.occurred_at,
    )


async def intervention_deleted(session: AsyncSession, *, fact: InterventionGone, grace: timedelta) -> int:
    """The intervention is gone (final, whatever the order facts arrive in): hide its documents at
    once, remove their files after `grace`. Returns how many documents were deleted."""
    await repo.mark_intervention_deleted(session, intervention_id=fact.intervention_id, occurred_at=fact.occurred_at)
    moment = now()
    documents = await repo.live_documents_of(session, fact.intervention_id)
    for document in documents:
        document.deleted_at = moment
        document.purge_after = moment + grace
    await session.flush()
    for document in documents:
        await add_event(
            session,
            DocumentDeleted(
                document_id=document.id,
                intervention_id=document.intervention_id,
                deleted_by=None,
                reason="intervention_deleted",
                occurred_at=moment,
            ),
            subject=document.id,
        )
    return len(documents)


async def technicien_changed(session: AsyncSession, *, fact: TechnicienFact) -> bool:
    """`planning.technicien.*`: who (user id) is behind a technician id; older versions are ignored."""
    return await repo.upsert_technicien_ref(
        session, technicien_id=fact.technicien_id, user_id=fact.user_id, version=fact.version
    )
