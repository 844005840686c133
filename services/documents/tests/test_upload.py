"""Uploads through the HTTP API: the round trip, the allow-list (type from the bytes), the size limit
cut off early, names, empty files, malformed bodies, and the event written with the row."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_documents.config import MIB, DocumentsSettings
from mif_documents.storage import TEMP_DIR_NAME
from mif_documents.testing import (
    MANAGER_ID,
    TEST_UPLOAD_LIMIT,
    Headers,
    Known,
    Upload,
    elf_bytes,
    gif_bytes,
    jpeg_bytes,
    multipart,
    office_bytes,
    pdf_bytes,
    pe_bytes,
    plain_zip_bytes,
    png_bytes,
    webp_bytes,
)


def stored_files(storage_dir: Path) -> set[str]:
    return {p.name for p in storage_dir.glob("??/??/*")}


def staged_files(storage_dir: Path) -> list[Path]:
    return list((storage_dir / TEMP_DIR_NAME).glob("*"))


async def download(client: httpx.AsyncClient, path: str, **headers: str) -> httpx.Response:
    return await client.get(path, headers=headers)


async def test_upload_then_download_gives_the_same_bytes(
    client: httpx.AsyncClient, manager: Headers, upload: Upload, known_intervention: Known
) -> None:
    intervention_id = await known_intervention()
    content = pdf_bytes(100_000)
    response = await upload(
        intervention_id, manager, content, filename="Rapport final.pdf", fields={"categorie": "rapport"}
    )
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["filename"] == "Rapport final.pdf"
    assert document["mime"] == "application/pdf"
    assert document["taille"] == len(content)
    assert document["sha256"] == hashlib.sha256(content).hexdigest()
    assert document["categorie"] == "rapport"
    assert document["intervention_id"] == intervention_id
    assert document["uploaded_by"] == MANAGER_ID
    assert document["description"] is None
    assert response.headers["location"] == f"/api/v1/documents/fichier/{document['id']}"
    assert document["path"].startswith(f"/api/v1/documents/{document['id']}/download?expires=")

    fetched = await download(client, document["path"])  # no Authorization header
    assert fetched.status_code == 200
    assert fetched.content == content
    assert fetched.headers["content-type"] == "application/pdf"
    assert fetched.headers["content-length"] == str(len(content))
    assert fetched.headers["accept-ranges"] == "bytes"
    assert fetched.headers["x-content-type-options"] == "nosniff"
    assert fetched.headers["content-disposition"] == (
        "attachment; filename=\"Rapport final.pdf\"; filename*=UTF-8''Rapport%20final.pdf"
    )


@pytest.mark.parametrize(
    ("content", "filename", "declared", "mime"),
    [
        (pdf_bytes(), "a.pdf", "application/pdf", "application/pdf"),
        (jpeg_bytes(), "photo.jpg", "image/jpeg", "image/jpeg"),
        (png_bytes(), "photo.png", "image/png", "image/png"),
        (gif_bytes(), "anim.gif", "image/gif", "image/gif"),
        (webp_bytes(), "photo.webp", "image/webp", "image/webp"),
        ("Compte rendu : pompe révisée.\n".encode(), "notes.txt", "text/plain", "text/plain"),
        (b"date;mesure\n2026-03-01;4,2\n", "mesures.csv", "text/csv", "text/csv"),
        (b"date,mesure\n2026-03-01,4.2\n", "export", "text/csv", "text/csv"),
        (
            office_bytes("xlsx"),
            "releves.xlsx",
            "application/octet-stream",
            ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ),
        (
            office_bytes("docx"),
            "rapport.docx",
            "application/octet-stream",
            ("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ),
        # The bytes decide, not the name or the declared type.
        (png_bytes(), "photo.pdf", "application/pdf", "image/png"),
    ],
    ids=["pdf", "jpeg", "png", "gif", "webp", "text", "csv", "csv-declared", "xlsx", "docx", "png-named-pdf"],
)
async def test_allowed_types_are_detected_from_the_bytes(
    client: httpx.AsyncClient,
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    content: bytes,
    filename: str,
    declared: str,
    mime: str,
) -> None:
    response = await upload(await known_intervention(), manager, content, filename=filename, content_type=declared)
    assert response.status_code == 201, response.text
    assert response.json()["mime"] == mime
    fetched = await download(client, response.json()["path"])
    assert fetched.content == content
    expected = f"{mime}; charset=utf-8" if mime.startswith("text/") else mime
    assert fetched.headers["content-type"] == expected


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (elf_bytes(), "rapport.pdf"),
        (pe_bytes(), "facture.pdf"),
        (plain_zip_bytes(), "archive.docx"),
        (b"PK\x03\x04 not really a zip", "releves.xlsx"),
        (b"text with a NUL \x00 byte", "notes.txt"),
        ("latin-1 accentu\xe9".encode("latin-1"), "notes.txt"),
        (b"<?xml version='1.0'?><svg onload='x'/>" + b"\x01", "image.svg"),
    ],
    ids=["elf-renamed-pdf", "pe-renamed-pdf", "plain-zip", "broken-zip", "nul-text", "not-utf8", "binary-svg"],
)
async def test_other_types_are_refused_with_415_and_nothing_is_kept(
    client: httpx.AsyncClient,
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    storage_dir: Path,
    content: bytes,
    filename: str,
) -> None:
    before = stored_files(storage_dir)
    intervention_id = await known_intervention()
    response = await upload(intervention_id, manager, content, filename=filename)
    assert response.status_code == 415, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/file-type-not-allowed")
    assert f"'{filename}'" in problem["detail"] and "PDF" in problem["detail"]
    assert stored_files(storage_dir) == before
    assert staged_files(storage_dir) == []
    listed = await client.get(f"/api/v1/documents/{intervention_id}", headers=manager)
    assert listed.json() == []


async def test_a_file_at_the_limit_is_accepted(manager: Headers, upload: Upload, known_intervention: Known) -> None:
    response = await upload(await known_intervention(), manager, pdf_bytes(TEST_UPLOAD_LIMIT))
    assert response.status_code == 201, response.text
    assert response.json()["taille"] == TEST_UPLOAD_LIMIT


async def test_an_oversized_upload_is_cut_off_early_with_413(
    client: httpx.AsyncClient, manager: Headers, known_intervention: Known, storage_dir: Path
) -> None:
    intervention_id = await known_intervention()
    before = stored_files(storage_dir)
    head, headers = multipart(b"", filename="huge.pdf")
    opening, closing = head.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n", b"\r\n--" + head.rsplit(b"\r\n--", 1)[1]
    sent = 0
    chunk = pdf_bytes(64 * 1024)

    async def body() -> AsyncIterator[bytes]:  # 20 MB announced by nothing: chunked, as a stream
        nonlocal sent
        yield opening
        for _ in range(320):
            sent += len(chunk)
            yield chunk
        yield closing

    response = await client.post(
        "/api/v1/documents", params={"intervention_id": intervention_id}, content=body(), headers=manager | headers
    )
    assert response.status_code == 413, response.text
    problem = response.json()
    assert problem["type"].endswith("/file-too-large")
    assert "256 KB" in problem["detail"]
    assert sent <= TEST_UPLOAD_LIMIT + 2 * len(chunk)  # stopped reading right after the limit
    assert stored_files(storage_dir) == before
    assert staged_files(storage_dir) == []


async def test_a_declared_length_over_the_limit_is_refused_before_reading(
    client: httpx.AsyncClient, manager: Headers, known_intervention: Known
) -> None:
    body, headers = multipart(pdf_bytes(TEST_UPLOAD_LIMIT + 100 * 1024))
    response = await client.post(
        "/api/v1/documents",
        params={"intervention_id": await known_intervention()},
        content=body,
        headers=manager | headers,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_the_default_limit_is_10_mb_and_the_body_limit_leaves_room_for_it() -> None:
    settings = DocumentsSettings(max_body_bytes=1024 * 1024)
    assert settings.max_upload_bytes == 10 * MIB
    assert settings.max_body_bytes > settings.max_upload_bytes
    assert DocumentsSettings(max_upload_bytes=50 * MIB).max_body_bytes > 50 * MIB


async def test_an_empty_file_is_refused(manager: Headers, upload: Upload, known_intervention: Known) -> None:
    response = await upload(await known_intervention(), manager, b"", filename="vide.pdf")
    assert response.status_code == 422
    problem = response.json()
    assert "empty" in problem["detail"]
    assert problem["errors"] == [{"field": "file", "message": "empty file"}]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (b"../../etc/passwd.txt", "passwd.txt"),
        (b"..\\..\\windows\\system32\\evil.pdf", "evil.pdf"),
        (b"C:\\Users\\ali\\Desktop\\rapport.pdf", "rapport.pdf"),
        (b"rap\x00port.pdf", "rapport.pdf"),
        (b"note\x07\x1b[31m.pdf", "note[31m.pdf"),
        (b"photo\xe2\x80\xaefdp.exe.pdf", "photofdp.exe.pdf"),  # U+202E RIGHT-TO-LEFT OVERRIDE dropped
        ("  relevé   de\tmesures .pdf ".encode(), "relevé de mesures .pdf"),
        ("Отчёт №5.pdf".encode(), "Отчёт №5.pdf"),
    ],
    ids=["dotdot", "backslashes", "windows-path", "nul", "controls", "bidi", "whitespace", "cyrillic"],
)
async def test_names_are_sanitised_and_the_original_kept_for_display(
    client: httpx.AsyncClient,
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    storage_dir: Path,
    sent: bytes,
    kept: str,
) -> None:
    response = await upload(await known_intervention(), manager, pdf_bytes(), filename=sent)
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["filename"] == kept
    assert kept not in stored_files(storage_dir)  # never used on disk
    fetched = await download(client, document["path"])
    disposition = fetched.headers["content-disposition"]
    assert disposition.isascii() and "\x00" not in disposition and "/" not in disposition.split(";")[1]


async def test_a_long_name_is_cut_to_255_characters_keeping_the_extension(
    manager: Headers, upload: Upload, known_intervention: Known
) -> None:
    response = await upload(await known_intervention(), manager, pdf_bytes(), filename="r" * 400 + ".pdf")
    assert response.status_code == 201
    assert response.json()["filename"] == "r" * 251 + ".pdf"


@pytest.mark.parametrize("sent", [b"", b"../", b"..", b"a/b/", b"\x00\x01", b"  ", b"..\\.."])
async def test_a_name_with_nothing_usable_is_refused(
    manager: Headers, upload: Upload, known_intervention: Known, sent: bytes
) -> None:
    response = await upload(await known_intervention(), manager, pdf_bytes(), filename=sent)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": "file", "message": "missing or unusable file name"}]


async def test_categorie_and_description_are_kept(
    client: httpx.AsyncClient, technicien: Headers, manager: Headers, upload: Upload, known_intervention: Known
) -> None:
    fields = {"categorie": " Photo ", "description": "Joint de la pompe, côté aspiration.\nAvant remplacement."}
    response = await upload(await known_intervention(), manager, png_bytes(), filename="joint.png", fields=fields)
    assert response.status_code == 201, response.text
    assert response.json()["categorie"] == "photo"
    assert response.json()["description"] == fields["description"]
    metadata = await client.get(f"/api/v1/documents/fichier/{response.json()['id']}", headers=manager)
    assert metadata.status_code == 200
    assert metadata.json() | {"path": None} == response.json() | {"path": None}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"categorie": "facture"}, "categorie"),
        ({"description": "x" * 1001}, "description"),
        ({"description": "bell \x07"}, "description"),
    ],
)
async def test_invalid_form_fields_are_422_and_nothing_is_kept(
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    storage_dir: Path,
    fields: dict[str, str],
    field: str,
) -> None:
    before = stored_files(storage_dir)
    response = await upload(await known_intervention(), manager, pdf_bytes(), fields=fields)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert stored_files(storage_dir) == before
    assert staged_files(storage_dir) == []


async def test_a_field_larger_than_8_kb_is_413(manager: Headers, upload: Upload, known_intervention: Known) -> None:
    response = await upload(await known_intervention(), manager, pdf_bytes(), fields={"description": "x" * 9000})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("make_body", "status"),
    [
        (lambda: (b'{"file": "x"}', {"Content-Type": "application/json"}), 415),
        (lambda: (b"raw", {"Content-Type": "application/pdf"}), 415),
        (lambda: (b"--x\r\n", {"Content-Type": "multipart/form-data"}), 400),  # no boundary
        (lambda: multipart(pdf_bytes())[0][:-30], 400),  # cut before the closing boundary
        (lambda: multipart(pdf_bytes(), field_name="document"), 422),  # no part named file
        (lambda: (b"garbage without boundary", {"Content-Type": "multipart/form-data; boundary=zz"}), 400),
    ],
    ids=["json", "raw-pdf", "no-boundary", "truncated", "no-file-part", "garbage"],
)
async def test_bodies_that_are_not_a_usable_form_are_refused(
    client: httpx.AsyncClient,
    manager: Headers,
    known_intervention: Known,
    storage_dir: Path,
    make_body: Callable[[], Any],
    status: int,
) -> None:
    made = make_body()
    body, headers = made if isinstance(made, tuple) else (made, multipart(b"")[1])
    response = await client.post(
        "/api/v1/documents",
        params={"intervention_id": await known_intervention()},
        content=body,
        headers=manager | headers,
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert staged_files(storage_dir) == []


async def test_two_file_parts_are_refused(
    client: httpx.AsyncClient, manager: Headers, known_intervention: Known, storage_dir: Path
) -> None:
    one, headers = multipart(pdf_bytes(), filename="a.pdf")
    two, _ = multipart(pdf_bytes(), filename="b.pdf")
    body = one.rsplit(b"--", 2)[0] + two
    response = await client.post(
        "/api/v1/documents",
        params={"intervention_id": await known_intervention()},
        content=body,
        headers=manager | headers,
    )
    assert response.status_code == 422
    assert staged_files(storage_dir) == []


async def test_an_upload_writes_the_uploaded_event_with_the_row(
    manager: Headers, upload: Upload, known_intervention: Known, db_session: AsyncSession
) -> None:
    intervention_id = await known_intervention(client_id=71, technicien_id=501)
    response = await upload(intervention_id, manager, pdf_bytes(), filename="r.pdf", fields={"categorie": "rapport"})
    document = response.json()
    row = (
        await db_session.execute(
            text("SELECT type, subject, envelope FROM outbox WHERE subject = :s AND type LIKE 'documents.%'"),
            {"s": str(document["id"])},
        )
    ).one()
    assert row.type == "documents.document.uploaded.v1"
    data = row.envelope["data"]
    assert data == {
        "document_id": document["id"],
        "intervention_id": intervention_id,
        "filename": "r.pdf",
        "mime": "application/pdf",
        "taille": document["taille"],
        "sha256": document["sha256"],
        "categorie": "rapport",
        "uploaded_by": MANAGER_ID,
        "client_id": 71,
        "technicien_id": 501,
        "occurred_at": data["occurred_at"],
    }
    assert row.envelope["source"] == "/mif/documents"


async def test_upload_needs_an_intervention_id(client: httpx.AsyncClient, manager: Headers) -> None:
    body, headers = multipart(pdf_bytes())
    response = await client.post("/api/v1/documents", content=body, headers=manager | headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "intervention_id"


async def test_upload_needs_a_token(client: httpx.AsyncClient, known_intervention: Known) -> None:
    body, headers = multipart(pdf_bytes())
    response = await client.post(
        "/api/v1/documents", params={"intervention_id": await known_intervention()}, content=body, headers=headers
    )
    assert response.status_code == 401
