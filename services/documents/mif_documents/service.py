"""Business rules of the documents service; the only place that writes outbox events.

Who sees what (DOMAIN.md §1), decided from the local replicas: managers (responsable, admin) every
intervention; a technician the interventions assigned to them (`intervention_ref.technicien_id` →
`technicien_ref.user_id`); a client user its organisation's (`client_id`). Anything else is "does not
exist or is not visible to you" (404, one sentence for both, so existence does not leak). When the
replica cannot decide (the intervention, or the technician behind it, has not arrived by event yet),
the interventions service is asked once, as the caller, and the answer cached.

Retention (docs/retention.md): an archived intervention keeps its documents, readable, read-only
(no uploads; only managers delete). If an intervention is deleted, its documents are soft-deleted at
once and their files removed after a grace period. A user's deletion (the uploader or a manager)
soft-deletes the row and removes the file right after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.errors import Conflict, Forbidden, NotFound, ServiceUnavailable
from mif_common.events import add_event
from mif_common.intervention_scope import InterventionsOwner, scope_of, sees
from mif_documents import repository as repo
from mif_documents.events import DocumentDeleted, DocumentUploaded
from mif_documents.models import Document, InterventionRef, StatutIntervention
from mif_documents.schemas import InterventionAnswer, UploadForm
from mif_documents.upload import ReceivedUpload
from mif_documents.vault import Vault

# A read-through answer without a timestamp never wins over an event.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InterventionIntrouvable(NotFound):
    slug = "intervention-not-found"


class DocumentIntrouvable(NotFound):
    slug = "document-not-found"


class InterventionArchivee(Conflict):
    slug = "intervention-archived"


class SuppressionInterdite(Forbidden):
    slug = "document-delete-forbidden"


class InterventionsIndisponible(ServiceUnavailable):
    slug = "interventions-unavailable"


def intervention_not_visible(intervention_id: int) -> InterventionIntrouvable:
    return InterventionIntrouvable(f"Intervention {intervention_id} does not exist or is not visible to you.")


def document_not_visible(document_id: int) -> DocumentIntrouvable:
    return DocumentIntrouvable(f"Document {document_id} does not exist or is not visible to you.")


class InterventionsClient(InterventionsOwner):
    """Interventions, asked about one intervention as the caller (`visible_intervention`)."""

    async def answer(self, intervention_id: int) -> InterventionAnswer | None:
        """The intervention as the caller sees it; None when interventions says it does not exist or
        is not visible to the caller; 503 when interventions cannot answer."""
        unavailable = InterventionsIndisponible(
            f"Cannot check intervention {intervention_id} now: the interventions service did not answer. "
            "Try again in a moment.",
            headers={"Retry-After": "5"},
        )
        return await self.fetch(intervention_id, InterventionAnswer, unavailable=unavailable)


@dataclass(frozen=True, slots=True)
class VisibleIntervention:
    """An intervention the caller may see, as the replica (or the owner) knows it."""

    intervention_id: int
    client_id: int | None
    technicien_id: int | None
    statut: str
    # Set when the interventions service was asked (a replica miss): the answer to cache.
    fetched: InterventionAnswer | None = None

    @property
    def archived(self) -> bool:
        return self.statut == StatutIntervention.archivee

    @classmethod
    def of(cls, ref: InterventionRef, fetched: InterventionAnswer | None = None) -> VisibleIntervention:
        return cls(ref.intervention_id, ref.client_id, ref.technicien_id, ref.statut, fetched)


async def remember_intervention(session: AsyncSession, answer: InterventionAnswer) -> None:
    """Cache what interventions answered (an event with a later timestamp still wins)."""
    await repo.upsert_intervention_ref(
        session,
        intervention_id=answer.id,
        client_id=answer.client_id,
        technicien_id=answer.technicien_id,
        statut=answer.statut.value,
        occurred_at=answer.date_modification or _EPOCH,
    )


async def _ask_owner(
    session: AsyncSession, *, intervention_id: int, interventions: InterventionsClient
) -> VisibleIntervention:
    answer = await interventions.answer(intervention_id)
    if answer is None:
        raise intervention_not_visible(intervention_id)
    await remember_intervention(session, answer)
    # Interventions applied the caller's rules: it is visible, whatever the replica may lag behind.
    return VisibleIntervention(answer.id, answer.client_id, answer.technicien_id, answer.statut.value, answer)


async def visible_intervention(
    session: AsyncSession, *, intervention_id: int, principal: Principal, interventions: InterventionsClient
) -> VisibleIntervention:
    """The intervention if the caller may see it, else 404 (the same sentence whether it exists or not)."""
    ref = await repo.intervention_ref(session, intervention_id)
    if ref is None:
        return await _ask_owner(session, intervention_id=intervention_id, interventions=interventions)
    if ref.deleted_at is not None:
        raise intervention_not_visible(intervention_id)
    seen = await sees(scope_of(principal), ref, lambda technicien_id: repo.technicien_user_id(session, technicien_id))
    if seen is None:  # planning has not told us who that technician is yet: the owner decides
        return await _ask_owner(session, intervention_id=intervention_id, interventions=interventions)
    if seen:
        return VisibleIntervention.of(ref)
    raise intervention_not_visible(intervention_id)


async def visible_document(
    session: AsyncSession, *, document_id: int, principal: Principal, interventions: InterventionsClient
) -> tuple[Document, VisibleIntervention]:
    """A live document whose intervention the caller may see, else 404."""
    document = await repo.document_by_id(session, document_id)
    if document is None:
        raise document_not_visible(document_id)
    try:
        intervention = await visible_intervention(
            session, intervention_id=document.intervention_id, principal=principal, interventions=interventions
        )
    except InterventionIntrouvable:
        raise document_not_visible(document_id) from None
    return document, intervention


# --- upload -------------------------------------------------------------------------------------


async def upload_target(
    session: AsyncSession, *, intervention_id: int, principal: Principal, interventions: InterventionsClient
) -> VisibleIntervention:
    """Checked before the body is read: the caller may attach a document to this intervention."""
    intervention = await visible_intervention(
        session, intervention_id=intervention_id, principal=principal, interventions=interventions
    )
    _ensure_open_for_uploads(intervention.intervention_id, intervention.statut)
    return intervention


def _ensure_open_for_uploads(intervention_id: int, statut: str) -> None:
    if statut == StatutIntervention.archivee:
        raise InterventionArchivee(
            f"Intervention {intervention_id} is archived: its documents are read-only, no new upload is accepted."
        )


async def record_upload(
    session: AsyncSession,
    *,
    target: VisibleIntervention,
    received: ReceivedUpload,
    form: UploadForm,
    principal: Principal,
    vault: Vault,
) -> Document:
    """Store the validated file, then its row and event in the request's transaction (the caller
    discards the staged file whatever happens: a no-op once it is stored).

    The file is written first and the row second: a crash in between leaves a file that no row points
    at, which is never served (downloads start from the row) and which the cleanup job removes."""
    if target.fetched is not None:
        await remember_intervention(session, target.fetched)  # the read-through's cache (see the API)
    # A shared lock: the intervention cannot be archived or deleted until this upload is committed.
    ref = await repo.intervention_ref(session, target.intervention_id, for_share=True)
    if ref is None or ref.deleted_at is not None:
        raise intervention_not_visible(target.intervention_id)
    _ensure_open_for_uploads(ref.intervention_id, ref.statut)
    kept = await vault.keep(received.staged)
    try:
        document = Document(
            intervention_id=ref.intervention_id,
            filename=received.filename,
            mime=received.mime,
            taille=received.size,
            sha256=received.sha256,
            categorie=form.categorie.value,
            description=form.description,
            uploaded_by=principal.user_id,
            date_upload=now(),
            storage_key=kept.storage_key,
            key_id=kept.key_id,
        )
        session.add(document)
        await session.flush()
        await add_event(
            session,
            DocumentUploaded(
                document_id=document.id,
                intervention_id=document.intervention_id,
                filename=document.filename,
                mime=document.mime,
                taille=document.taille,
                sha256=document.sha256,
                categorie=document.categorie,
                uploaded_by=document.uploaded_by,
                client_id=ref.client_id,
                technicien_id=ref.technicien_id,
                occurred_at=document.date_upload,
            ),
            subject=document.id,
        )
    except BaseException:
        # Not committed: remove the file now rather than leave it to the orphan sweep.
        await vault.delete(kept.storage_key)
        raise
    return document


# --- delete -------------------------------------------------------------------------------------


async def delete_document(
    session: AsyncSession, *, document_id: int, principal: Principal, interventions: InterventionsClient
) -> Document:
    """Soft-delete a document (its uploader or a manager); the caller removes the file after the
    commit (and the cleanup job does if that never happens)."""
    document, intervention = await visible_document(
        session, document_id=document_id, principal=principal, interventions=interventions
    )
    if not principal.is_manager and document.uploaded_by != principal.user_id:
        raise SuppressionInterdite("Only the person who uploaded this document, or a manager, may delete it.")
    if intervention.archived and not principal.is_manager:
        raise InterventionArchivee(
            f"Intervention {intervention.intervention_id} is archived: its documents are read-only "
            "(only a manager may still delete one)."
        )
    locked = await repo.document_by_id(session, document_id, for_update=True)
    if locked is None:  # deleted meanwhile
        raise document_not_visible(document_id)
    moment = now()
    locked.deleted_at = moment
    locked.deleted_by = principal.user_id
    locked.purge_after = moment
    await session.flush()
    await add_event(
        session,
        DocumentDeleted(
            document_id=locked.id,
            intervention_id=locked.intervention_id,
            deleted_by=principal.user_id,
            reason="user",
            occurred_at=moment,
        ),
        subject=locked.id,
    )
    return locked
