from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import ServiceUnderTest
from mif_documents.config import DocumentsSettings
from mif_documents.handlers import HANDLERS
from mif_documents.main import create_app
from mif_documents.testing import (
    ADMIN_ID,
    MANAGER_ID,
    OTHER_TECH_ID,
    OTHER_TECH_USER_ID,
    TECH_ID,
    TECH_USER_ID,
    TEST_UPLOAD_LIMIT,
    Deliver,
    Headers,
    Known,
    StandIn,
    Upload,
    multipart,
    pdf_bytes,
)
from mif_interventions.testing import intervention_data
from mif_planning.testing import technicien_data


@pytest.fixture(scope="session")
async def standin(mif_keys: TestKeys) -> AsyncIterator[StandIn]:
    """A real HTTP server standing in for interventions (read-through) and auth (JWKS)."""
    server = await StandIn(jwks=mif_keys.jwks).start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
def storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("documents-storage")


@pytest.fixture(scope="session")
def mif_service(storage_dir: Path, standin: StandIn) -> ServiceUnderTest:
    return ServiceUnderTest(
        "documents",
        DocumentsSettings,
        create_app,
        handlers=HANDLERS,
        settings_overrides={
            "storage_dir": storage_dir,
            "interventions_url": standin.url,
            "max_upload_bytes": TEST_UPLOAD_LIMIT,
        },
    )


_ids = itertools.count(90_000)


@pytest.fixture
def new_id() -> Callable[[], int]:
    """A fresh intervention id (the stand-in and the replica are shared across tests)."""
    return lambda: next(_ids)


@pytest.fixture
def admin(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("admin", user_id=ADMIN_ID)


@pytest.fixture
def manager(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("responsable", user_id=MANAGER_ID)


@pytest.fixture
def technicien(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("technicien", user_id=TECH_USER_ID)


@pytest.fixture
def other_technicien(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("technicien", user_id=OTHER_TECH_USER_ID)


@pytest.fixture
def client_user(auth_headers: Callable[..., Headers]) -> Callable[[int], Headers]:
    """Headers of a user of organisation `client_id`."""
    return lambda client_id: auth_headers("client", user_id=2000 + client_id, client_id=client_id)


@pytest.fixture
def known_intervention(deliver: Deliver, new_id: Callable[[], int]) -> Known:
    """An intervention in the replica (through an interventions event); returns its id."""

    async def make(verb: str = "created", **fields: Any) -> int:
        intervention_id = fields.pop("intervention_id", None) or new_id()
        await deliver(f"interventions.intervention.{verb}.v1", intervention_data(intervention_id, **fields))
        return intervention_id

    return make


@pytest.fixture
async def technicians(deliver: Deliver) -> None:
    """planning told documents who the two technicians are."""
    await deliver("planning.technicien.created.v1", technicien_data(TECH_ID, TECH_USER_ID))
    await deliver("planning.technicien.created.v1", technicien_data(OTHER_TECH_ID, OTHER_TECH_USER_ID))


@pytest.fixture
def upload(client: httpx.AsyncClient) -> Upload:
    """POST a file to an intervention; `content` defaults to a small PDF."""

    async def send(
        intervention_id: int,
        headers: Headers,
        content: bytes | None = None,
        *,
        filename: str | bytes = "rapport.pdf",
        content_type: str = "application/pdf",
        fields: dict[str, str] | None = None,
    ) -> httpx.Response:
        body, content_headers = multipart(
            pdf_bytes() if content is None else content, filename=filename, content_type=content_type, fields=fields
        )
        return await client.post(
            "/api/v1/documents",
            params={"intervention_id": intervention_id},
            content=body,
            headers=headers | content_headers,
        )

    return send
