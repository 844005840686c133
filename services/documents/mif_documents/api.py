"""HTTP routes of the documents service: parse, call the service, shape the answer.

Paths follow the contract existing clients use (DOMAIN.md §8): `GET /documents/{intervention_id}`
lists one intervention's documents, so one document's metadata is at `/documents/fichier/{id}`;
`DELETE /documents/{id}` and `/documents/{id}/download` take a document id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from mif_common.auth import CurrentPrincipal
from mif_common.db import Session
from mif_common.errors import BadRequest, DomainError
from mif_common.intervention_scope import scope_of
from mif_common.pagination import PageParams, Sortable, fetch_page, order_by, page_params, page_response
from mif_common.params import MAX_ID, MAX_REPEATS, EntityId
from mif_documents import repository as repo
from mif_documents import service
from mif_documents.encryption import DecryptionError
from mif_documents.metrics import DOWNLOADED_BYTES, UPLOADED_BYTES, UPLOADS
from mif_documents.models import Categorie, Document
from mif_documents.ranges import requested_range
from mif_documents.schemas import DocumentOut, UploadForm
from mif_documents.signing import UrlSigner
from mif_documents.upload import receive_upload
from mif_documents.validation import ALLOWED_TYPES, content_disposition, content_type_header
from mif_documents.vault import Vault

logger = logging.getLogger(__name__)


class StoredFileUnreadable(DomainError):
    """The row exists but its file is missing or fails authentication: an operator must look."""

    status, slug, title = 500, "stored-file-unreadable", "Internal server error"


documents_router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
Page = Annotated[PageParams, Depends(page_params)]
InterventionIdQuery = Annotated[int, Query(gt=0, le=MAX_ID, description="The intervention the document belongs to.")]

_SORT: dict[str, Sortable] = {
    "id": Document.id,
    "date_upload": Document.date_upload,
    "filename": sa.func.lower(Document.filename),
    "taille": Document.taille,
    "categorie": Document.categorie,
    "mime": Document.mime,
    "intervention_id": Document.intervention_id,
}

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "The document (one file)."},
                        "categorie": {"type": "string", "enum": [c.value for c in Categorie], "default": "autre"},
                        "description": {"type": "string", "maxLength": 1000},
                    },
                }
            }
        },
    }
}

_NOT_LINK = "This download link is invalid or has expired; list the documents again to get a fresh link."


# Interventions, asked as the caller about an intervention the replica cannot decide on.
Interventions = Annotated[service.InterventionsClient, Depends(service.InterventionsClient.for_request)]


def _signer(request: Request) -> UrlSigner:
    signer: UrlSigner = request.app.state.signer
    return signer


def _vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def document_out(document: Document, signer: UrlSigner) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        filename=document.filename,
        path=signer.path(document.id),
        mime=document.mime,
        taille=document.taille,
        sha256=document.sha256,
        categorie=Categorie(document.categorie),
        intervention_id=document.intervention_id,
        uploaded_by=document.uploaded_by,
        description=document.description,
        date_upload=document.date_upload,
    )


async def _list(request: Request, session: Session, params: PageParams, query: sa.Select[Document]) -> Response:
    query = query.order_by(*order_by(params.sort, _SORT, default=[Document.id]))
    documents, total = await fetch_page(session, query, params)
    signer = _signer(request)
    return page_response(request, [document_out(d, signer) for d in documents], total=total, params=params)


@documents_router.get(
    "", response_model=list[DocumentOut], summary="List the documents the caller may see (every intervention)"
)
async def list_documents(
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    params: Page,
    intervention_id: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
    categorie: Annotated[
        list[Categorie] | None, Query(max_length=MAX_REPEATS, description="Repeat for several.")
    ] = None,
    mime: Annotated[str | None, Query(max_length=100)] = None,
    uploaded_by: Annotated[int | None, Query(gt=0, le=MAX_ID)] = None,
) -> Response:
    scope = scope_of(principal)
    query = repo.documents_query(
        only_client_id=scope.client_id,
        only_technicien_user_id=scope.technicien_user_id,
        intervention_id=intervention_id,
        categorie=[c.value for c in categorie or ()],
        mime=mime,
        uploaded_by=uploaded_by,
        q=params.q,
    )
    return await _list(request, session, params, query)


@documents_router.post(
    "",
    response_model=DocumentOut,
    status_code=201,
    summary="Upload a document to an intervention (multipart part `file`)",
    description=(
        "The body is `multipart/form-data` with the file in a part named `file` and optional parts `categorie` "
        "and `description`; `intervention_id` is a query parameter. The intervention must exist and be visible to "
        "the caller, and not be archived. The type is detected from the bytes: "
        f"{', '.join(ALLOWED_TYPES)}. Refusals: 413 over the size limit (the upload is cut off at once), 415 not "
        "an allowed type or not multipart, 422 no file / an empty file / an unusable name, 409 archived "
        "intervention, 404 intervention not visible."
    ),
    openapi_extra=_UPLOAD_BODY,
)
async def upload_document(
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    intervention_id: InterventionIdQuery,
    response: Response,
    interventions: Interventions,
) -> DocumentOut:
    target = await service.upload_target(
        session, intervention_id=intervention_id, principal=principal, interventions=interventions
    )
    # No connection (nor transaction) is held while the body streams in, which takes seconds for a large
    # file: nothing is written yet but a read-through's cache, which record_upload applies again.
    await session.rollback()
    vault = _vault(request)
    try:
        received = await receive_upload(
            request.stream(),
            content_type=request.headers.get("content-type"),
            storage=vault.storage,
            max_bytes=request.app.state.settings.max_upload_bytes,
        )
    except ClientDisconnect:
        UPLOADS.labels("interrupted").inc()
        raise BadRequest("The upload was interrupted before the end of the body.") from None
    except Exception as exc:
        UPLOADS.labels(_refusal(exc)).inc()
        raise
    try:
        try:
            form = UploadForm.model_validate(received.fields)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
        document = await service.record_upload(
            session, target=target, received=received, form=form, principal=principal, vault=vault
        )
    except Exception as exc:
        UPLOADS.labels(_refusal(exc)).inc()
        raise
    finally:
        await received.staged.discard()  # a no-op once the file is stored
    UPLOADS.labels("accepted").inc()
    UPLOADED_BYTES.inc(document.taille)
    response.headers["Location"] = f"{documents_router.prefix}/fichier/{document.id}"
    return document_out(document, _signer(request))


def _refusal(exc: Exception) -> str:
    status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
    if isinstance(exc, RequestValidationError):
        status = 422
    return f"refused_{status or 500}"


@documents_router.get("/fichier/{document_id}", response_model=DocumentOut, summary="One document's metadata")
async def get_document(
    document_id: EntityId, request: Request, session: Session, principal: CurrentPrincipal, interventions: Interventions
) -> DocumentOut:
    document, _ = await service.visible_document(
        session, document_id=document_id, principal=principal, interventions=interventions
    )
    return document_out(document, _signer(request))


@documents_router.get(
    "/{intervention_id}",
    response_model=list[DocumentOut],
    summary="The documents of one intervention (kept for existing clients)",
)
async def list_intervention_documents(
    intervention_id: EntityId,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    params: Page,
    interventions: Interventions,
) -> Response:
    await service.visible_intervention(
        session, intervention_id=intervention_id, principal=principal, interventions=interventions
    )
    return await _list(request, session, params, repo.documents_query(intervention_id=intervention_id, q=params.q))


@documents_router.get(
    "/{document_id}/download",
    response_class=StreamingResponse,
    summary="The document's bytes, through its signed URL (`path`); no Authorization header needed",
    description=(
        "Only through the signed, expiring URL given as `path`; a missing, tampered or expired signature is 404. "
        "Supports a single `Range` (206 with `Content-Range`; 416 when it starts past the end)."
    ),
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The whole document."},
        206: {"content": {"application/octet-stream": {}}, "description": "The requested byte range."},
        416: {"description": "The `Range` starts past the end of the document."},
    },
)
async def download_document(
    document_id: EntityId,
    request: Request,
    session: Session,
    expires: Annotated[str | None, Query(max_length=20)] = None,
    sig: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    if not _signer(request).verify(document_id, expires, sig):
        raise service.DocumentIntrouvable(_NOT_LINK)
    document = await repo.document_by_id(session, document_id)
    if document is None:
        raise service.DocumentIntrouvable(_NOT_LINK)
    size = document.taille
    etag = f'"{document.sha256}"'
    if_range = request.headers.get("if-range")
    wanted = requested_range(request.headers.get("range"), size) if if_range in (None, etag) else None
    start, end = wanted or (0, size)
    headers = {
        "Content-Length": str(end - start),
        "Content-Disposition": content_disposition(document.filename),
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    chunks = _vault(request).read(
        storage_key=document.storage_key, key_id=document.key_id, size=size, start=start, end=end
    )
    # Read the first chunk before answering: a missing or unreadable file is a logged 500, not a
    # response that breaks off after its headers.
    try:
        first = await anext(aiter(chunks), b"")
    except (OSError, DecryptionError) as exc:
        logger.error("document %s: stored file %s cannot be read: %r", document.id, document.storage_key, exc)
        raise StoredFileUnreadable(
            f"The stored file of document {document.id} cannot be read; the error has been logged."
        ) from exc
    return StreamingResponse(
        _counted(first, chunks),
        status_code=206 if wanted is not None else 200,
        headers=headers,
        media_type=content_type_header(document.mime),
    )


async def _counted(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    DOWNLOADED_BYTES.inc(len(first))
    yield first
    async for chunk in rest:
        DOWNLOADED_BYTES.inc(len(chunk))
        yield chunk


@documents_router.delete(
    "/{document_id}",
    status_code=204,
    summary="Delete a document (its uploader or a manager; on an archived intervention, managers only)",
)
async def delete_document(
    document_id: EntityId,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
    background: BackgroundTasks,
    interventions: Interventions,
) -> Response:
    document = await service.delete_document(
        session, document_id=document_id, principal=principal, interventions=interventions
    )
    # Runs after the response, hence after the commit; if it never runs, the cleanup job purges the file.
    background.add_task(_vault(request).delete, document.storage_key)
    return Response(status_code=204, background=background)
