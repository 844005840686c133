"""Deleting documents (the uploader or a manager) and the retention rule: archived interventions keep
their documents read-only; a deleted intervention's documents go, their files after a grace period."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.config import ServiceSettings
from mif_documents.jobs import cleanup_once
from mif_documents.testing import (
    CLIENT_A,
    MANAGER_ID,
    TECH_ID,
    TECH_USER_ID,
    Deliver,
    Headers,
    Known,
    Upload,
    multipart,
    pdf_bytes,
)
from mif_interventions.testing import intervention_data


async def outbox(db_session: AsyncSession, document_id: int) -> list[dict[str, Any]]:
    rows = await db_session.execute(
        text("SELECT envelope FROM outbox WHERE subject = :s AND type LIKE 'documents.%' ORDER BY created_at"),
        {"s": str(document_id)},
    )
    return [r.envelope for r in rows]


def file_of(storage_dir: Path, key: str) -> Path:
    return storage_dir / key[:2] / key[2:4] / key


async def storage_key(db_session: AsyncSession, document_id: int) -> str:
    key = await db_session.scalar(text("SELECT storage_key FROM document WHERE id = :i"), {"i": document_id})
    assert isinstance(key, str)
    return key


@pytest.fixture
def cleanup(db_session: AsyncSession, app: FastAPI) -> Callable[..., Any]:
    sessionmaker = async_sessionmaker(
        bind=db_session.bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )

    async def run(*, grace: timedelta = timedelta(hours=1), now: datetime | None = None) -> Any:
        await db_session.commit()  # see `deliver`
        report = await cleanup_once(sessionmaker=sessionmaker, vault=app.state.vault, grace=grace, now=now)
        db_session.expire_all()
        return report

    return run


@pytest.mark.usefixtures("technicians")
async def test_the_uploader_deletes_their_document(
    client: httpx.AsyncClient,
    upload: Upload,
    known_intervention: Known,
    technicien: Headers,
    manager: Headers,
    db_session: AsyncSession,
    storage_dir: Path,
) -> None:
    intervention_id = await known_intervention(statut="en_cours", technicien_id=TECH_ID)
    document = (await upload(intervention_id, technicien, pdf_bytes())).json()
    key = await storage_key(db_session, document["id"])
    assert file_of(storage_dir, key).exists()

    response = await client.delete(f"/api/v1/documents/{document['id']}", headers=technicien)
    assert response.status_code == 204
    assert not file_of(storage_dir, key).exists()  # removed right after the commit
    row = (
        await db_session.execute(
            text("SELECT deleted_at, deleted_by, purge_after FROM document WHERE id = :i"), {"i": document["id"]}
        )
    ).one()
    assert row.deleted_at is not None and row.deleted_by == TECH_USER_ID and row.purge_after == row.deleted_at
    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)).json() == []
    assert (await client.get(f"/api/v1/documents/fichier/{document['id']}", headers=manager)).status_code == 404
    assert (await client.get(document["path"])).status_code == 404
    assert (await client.delete(f"/api/v1/documents/{document['id']}", headers=technicien)).status_code == 404
    deleted = (await outbox(db_session, document["id"]))[-1]
    assert deleted["type"] == "documents.document.deleted.v1"
    assert deleted["data"] == {
        "document_id": document["id"],
        "intervention_id": intervention_id,
        "deleted_by": TECH_USER_ID,
        "reason": "user",
        "occurred_at": deleted["data"]["occurred_at"],
    }


@pytest.mark.usefixtures("technicians")
async def test_only_the_uploader_or_a_manager_deletes(
    client: httpx.AsyncClient,
    upload: Upload,
    known_intervention: Known,
    technicien: Headers,
    manager: Headers,
    admin: Headers,
    client_user: Callable[[int], Headers],
) -> None:
    intervention_id = await known_intervention(statut="en_cours", client_id=CLIENT_A, technicien_id=TECH_ID)
    by_client = (await upload(intervention_id, client_user(CLIENT_A), pdf_bytes())).json()
    by_tech = (await upload(intervention_id, technicien, pdf_bytes())).json()

    refused = await client.delete(f"/api/v1/documents/{by_client['id']}", headers=technicien)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only the person who uploaded this document, or a manager, may delete it."
    assert (await client.delete(f"/api/v1/documents/{by_tech['id']}", headers=client_user(CLIENT_A))).status_code == 403
    hidden = await client.delete(f"/api/v1/documents/{by_tech['id']}", headers=client_user(72))
    assert hidden.status_code == 404  # not visible: existence does not leak
    assert (await client.delete(f"/api/v1/documents/{by_client['id']}", headers=manager)).status_code == 204
    assert (await client.delete(f"/api/v1/documents/{by_tech['id']}", headers=admin)).status_code == 204


@pytest.mark.usefixtures("technicians")
async def test_an_archived_intervention_keeps_its_documents_read_only(
    client: httpx.AsyncClient,
    upload: Upload,
    deliver: Deliver,
    known_intervention: Known,
    technicien: Headers,
    manager: Headers,
) -> None:
    intervention_id = await known_intervention(statut="en_cours", technicien_id=TECH_ID)
    first = (await upload(intervention_id, technicien, pdf_bytes())).json()
    second = (await upload(intervention_id, technicien, pdf_bytes())).json()
    archived = intervention_data(intervention_id, statut="archivee", technicien_id=TECH_ID)
    await deliver("interventions.intervention.archived.v1", archived)

    for headers in (technicien, manager):
        refused = await upload(intervention_id, headers, pdf_bytes())
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"Intervention {intervention_id} is archived: its documents are read-only, no new upload is accepted."
        )
    listed = await client.get(f"/api/v1/documents/{intervention_id}", headers=technicien)
    assert [d["id"] for d in listed.json()] == [first["id"], second["id"]]
    assert (await client.get(listed.json()[0]["path"])).status_code == 200
    own = await client.delete(f"/api/v1/documents/{first['id']}", headers=technicien)
    assert own.status_code == 409 and "only a manager may still delete one" in own.json()["detail"]
    assert (await client.delete(f"/api/v1/documents/{first['id']}", headers=manager)).status_code == 204


async def test_an_archive_recorded_while_the_body_streams_refuses_the_upload(
    client: httpx.AsyncClient,
    deliver: Deliver,
    known_intervention: Known,
    manager: Headers,
    storage_dir: Path,
) -> None:
    intervention_id = await known_intervention(statut="cloturee")
    body, headers = multipart(pdf_bytes(100_000), filename="tardif.pdf")

    async def slow_body() -> AsyncIterator[bytes]:
        yield body[:50_000]
        # The intervention is archived while the upload is on its way.
        await deliver("interventions.intervention.archived.v1", intervention_data(intervention_id, statut="archivee"))
        yield body[50_000:]

    response = await client.post(
        "/api/v1/documents", params={"intervention_id": intervention_id}, content=slow_body(), headers=manager | headers
    )
    assert response.status_code == 409
    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)).json() == []
    assert list((storage_dir / ".tmp").glob("*")) == []


async def test_a_deleted_intervention_takes_its_documents_files_after_the_grace_period(
    client: httpx.AsyncClient,
    upload: Upload,
    deliver: Deliver,
    known_intervention: Known,
    manager: Headers,
    db_session: AsyncSession,
    storage_dir: Path,
    mif_settings: ServiceSettings,
    cleanup: Callable[..., Any],
) -> None:
    intervention_id = await known_intervention(client_id=CLIENT_A)
    documents = [(await upload(intervention_id, manager, pdf_bytes())).json() for _ in range(2)]
    keys = [await storage_key(db_session, d["id"]) for d in documents]
    gone = {"intervention_id": intervention_id, "occurred_at": datetime.now(UTC).isoformat()}
    await deliver("interventions.intervention.deleted.v1", gone)

    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)).status_code == 404
    assert (await client.get("/api/v1/documents", headers=manager)).json() == []
    assert (await client.get(documents[0]["path"])).status_code == 404
    assert (await upload(intervention_id, manager, pdf_bytes())).status_code == 404
    for document in documents:
        event = (await outbox(db_session, document["id"]))[-1]
        assert event["type"] == "documents.document.deleted.v1"
        assert event["data"]["reason"] == "intervention_deleted" and event["data"]["deleted_by"] is None

    # Files stay for the grace period (7 days by default), then the cleanup removes them.
    assert (await cleanup()).purged == 0
    assert all(file_of(storage_dir, k).exists() for k in keys)
    grace = timedelta(seconds=mif_settings.deleted_intervention_grace_seconds)  # type: ignore[attr-defined]
    report = await cleanup(now=datetime.now(UTC) + grace + timedelta(minutes=1))
    assert report.purged == 2
    assert not any(file_of(storage_dir, k).exists() for k in keys)
    purged = await db_session.scalar(
        text("SELECT count(*) FROM document WHERE intervention_id = :i AND purged_at IS NOT NULL"),
        {"i": intervention_id},
    )
    assert purged == 2
    # A later fact about the deleted intervention does not bring it back.
    await deliver("interventions.intervention.updated.v1", intervention_data(intervention_id, client_id=CLIENT_A))
    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)).status_code == 404


async def test_a_deletion_of_an_unknown_intervention_is_remembered(
    client: httpx.AsyncClient, deliver: Deliver, manager: Headers, new_id: Callable[[], int]
) -> None:
    intervention_id = new_id()
    gone = {"intervention_id": intervention_id, "occurred_at": datetime.now(UTC).isoformat()}
    assert await deliver("interventions.intervention.deleted.v1", gone)
    assert (await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)).status_code == 404


async def test_the_cleanup_purges_a_user_deletion_whose_file_removal_never_ran(
    upload: Upload,
    known_intervention: Known,
    manager: Headers,
    db_session: AsyncSession,
    storage_dir: Path,
    cleanup: Callable[..., Any],
) -> None:
    """The process died between the commit of a deletion and the removal of the file."""
    document = (await upload(await known_intervention(), manager, pdf_bytes())).json()
    key = await storage_key(db_session, document["id"])
    await db_session.execute(
        text("UPDATE document SET deleted_at = now(), deleted_by = :u, purge_after = now() WHERE id = :i"),
        {"u": MANAGER_ID, "i": document["id"]},
    )
    await db_session.commit()
    assert file_of(storage_dir, key).exists()
    assert (await cleanup()).purged == 1
    assert not file_of(storage_dir, key).exists()
