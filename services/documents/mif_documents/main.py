"""App factory of the documents service: `uvicorn --factory mif_documents.main:create_app`."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from mif_common.app import ServiceParts, create_service_app
from mif_documents.api import documents_router
from mif_documents.config import DocumentsSettings
from mif_documents.encryption import Keyring
from mif_documents.handlers import HANDLERS
from mif_documents.jobs import periodic_jobs
from mif_documents.service import InterventionsClient
from mif_documents.signing import UrlSigner, load_url_secret
from mif_documents.storage import LocalStorage
from mif_documents.vault import Vault

DESCRIPTION = """\
Files attached to interventions: photos, reports, manuals, certificates. Upload with
`POST /api/v1/documents?intervention_id=` (multipart part `file`); list all visible documents, one
intervention's (`GET /api/v1/documents/{intervention_id}`), one document's metadata
(`/api/v1/documents/fichier/{id}`); download through `path`, a signed expiring URL that needs no
Authorization header (404 once expired or tampered with; `Range` supported); delete (the uploader or a
manager).

Allowed types, detected from the bytes: PDF, JPEG, PNG, GIF, WebP, plain text (UTF-8), CSV, XLSX,
DOCX; at most 10 MB by default. Files are stored under random names outside any served folder,
with their SHA-256, optionally encrypted at rest (AES-256-GCM, key rotation).

Retention: documents of an archived intervention are kept, readable and read-only (no upload; only
a manager may delete one). Should an intervention be deleted, its documents are hidden at once and
their files removed after a grace period (7 days by default). A deleted document's file is removed
right after the deletion.

Publishes `documents.document.uploaded.v1` and `documents.document.deleted.v1`; consumes
`interventions.intervention.*.v1` and `planning.technicien.*.v1` (who may see which intervention).
"""


def create_app(settings: DocumentsSettings | None = None) -> FastAPI:
    settings = settings or DocumentsSettings()

    async def open_storage(app: FastAPI) -> None:
        # Refuses to start (EncryptionConfigError, UrlSecretError: RuntimeErrors with a clear message)
        # rather than run with encryption on and no key, or with a per-process signing secret.
        keyring = Keyring.from_config(
            enabled=settings.encryption_enabled,
            keys=settings.encryption_keys,
            active_id=settings.encryption_key_id,
        )
        storage = LocalStorage(settings.storage_dir)
        await asyncio.to_thread(storage.prepare)
        app.state.vault = Vault(storage, keyring)
        secret = await asyncio.to_thread(load_url_secret, settings)
        app.state.signer = UrlSigner(secret, ttl_seconds=settings.url_ttl_seconds)

    return create_service_app(
        settings,
        ServiceParts(
            title="MIF documents service",
            description=DESCRIPTION,
            routers=[documents_router],
            handlers=HANDLERS,
            on_startup=[open_storage],
            periodic_jobs=periodic_jobs(settings),
            owners=[InterventionsClient],
        ),
    )
