"""Events the documents service publishes (catalogue: docs/events/documents.md)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from mif_common.events import EventPayload


class DocumentUploaded(EventPayload):
    """A document was attached to an intervention (notifications tells the people concerned)."""

    event_type: ClassVar[str] = "documents.document.uploaded.v1"
    document_id: int
    intervention_id: int
    filename: str
    mime: str
    taille: int
    sha256: str
    categorie: str
    uploaded_by: int
    # From the intervention replica at upload time: who else is concerned.
    client_id: int | None = None
    technicien_id: int | None = None
    occurred_at: datetime


class DocumentDeleted(EventPayload):
    """A document was deleted: by its uploader or a manager, or because its intervention was deleted."""

    event_type: ClassVar[str] = "documents.document.deleted.v1"
    document_id: int
    intervention_id: int
    deleted_by: int | None = None  # None when it follows the intervention's deletion
    reason: Literal["user", "intervention_deleted"] = "user"
    occurred_at: datetime


ALL_EVENTS = (DocumentUploaded, DocumentDeleted)
