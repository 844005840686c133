"""Test helpers other suites reuse (documents' own tests, end-to-end tests, the benchmark): sample
files of each allowed type, multipart bodies built byte by byte, example `data` of the events documents publishes, and
a small real HTTP stand-in for what documents asks other services (interventions' read-through, auth's JWKS)."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from mif_common.testing.events import Deliver as Deliver
from mif_common.testing.events import example
from mif_common.testing.standin import Answer as Answer
from mif_common.testing.standin import StandIn as StandIn
from mif_documents.events import DocumentDeleted, DocumentUploaded

BOUNDARY = "mif-test-boundary-7MA4YWxkTrZu0gW"

# Who is who in documents' own tests (fixtures of services/documents/tests/conftest.py).
Headers = dict[str, str]
ADMIN_ID, MANAGER_ID, TECH_USER_ID, OTHER_TECH_USER_ID = 1001, 1002, 1003, 1004
TECH_ID, OTHER_TECH_ID = 501, 502  # technician profile ids (planning), behind the two technician users
CLIENT_A, CLIENT_B = 71, 72
# The tests run with a small upload limit so that "too large" costs little.
TEST_UPLOAD_LIMIT = 256 * 1024


# Fixtures: `deliver(event_type, data)` hands an event to the consumer path; `upload(intervention_id,
# headers, content, ...)` posts a file; `known(**fields)` puts an intervention in the replica.
Upload = Callable[..., Awaitable[httpx.Response]]
Known = Callable[..., Awaitable[int]]


def multipart(
    content: bytes,
    *,
    filename: str | bytes = "document.pdf",
    content_type: str = "application/octet-stream",
    fields: Mapping[str, str] | None = None,
    field_name: str = "file",
    boundary: str = BOUNDARY,
) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body with the file part (its filename sent as raw bytes, unescaped, as
    browsers do) and text fields after it; returns the body and its Content-Type header."""
    raw_name = filename if isinstance(filename, bytes) else filename.encode()
    parts = [
        f"--{boundary}\r\n".encode()
        + f'Content-Disposition: form-data; name="{field_name}"; filename="'.encode()
        + raw_name
        + f'"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
        + content
        + b"\r\n"
    ]
    for name, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


# --- sample files -----------------------------------------------------------------------------------


def pdf_bytes(size: int = 4096) -> bytes:
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n"
    tail = b"\n%%EOF\n"
    filler = os.urandom(max(0, size - len(head) - len(tail)))
    return head + filler + tail


def png_bytes(size: int = 2048) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(max(0, size - 16))


def jpeg_bytes(size: int = 2048) -> bytes:
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(max(0, size - 13))


def gif_bytes() -> bytes:
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def webp_bytes() -> bytes:
    payload = b"VP8 " + (10).to_bytes(4, "little") + os.urandom(10)
    return b"RIFF" + (4 + len(payload)).to_bytes(4, "little") + b"WEBP" + payload


def office_bytes(kind: str) -> bytes:
    """A minimal XLSX (`kind="xlsx"`) or DOCX (`"docx"`) container."""
    folder = {"xlsx": "xl/workbook.xml", "docx": "word/document.xml"}[kind]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        archive.writestr(folder, '<?xml version="1.0"?><root/>')
    return buffer.getvalue()


def plain_zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return buffer.getvalue()


def elf_bytes(size: int = 4096) -> bytes:
    """The start of a Linux executable (what a renamed `.pdf` might really be)."""
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + os.urandom(max(0, size - 20))


def pe_bytes(size: int = 4096) -> bytes:
    """The start of a Windows executable."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + os.urandom(max(0, size - 10))


# --- published events ------------------------------------------------------------------------------


def document_uploaded_data(
    document_id: int, intervention_id: int, *, uploaded_by: int = 5, **fields: Any
) -> dict[str, Any]:
    """`data` of a `documents.document.uploaded.v1` event (docs/events/documents.md), checked against
    `DocumentUploaded`; `fields` set any other key."""
    return example(
        DocumentUploaded,
        {
            "document_id": document_id,
            "intervention_id": intervention_id,
            "filename": "rapport.pdf",
            "mime": "application/pdf",
            "taille": 1234,
            "sha256": "0" * 64,
            "categorie": "rapport",
            "uploaded_by": uploaded_by,
            "client_id": None,
            "technicien_id": None,
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


def document_deleted_data(document_id: int, intervention_id: int, **fields: Any) -> dict[str, Any]:
    """`data` of a `documents.document.deleted.v1` event, checked against `DocumentDeleted`; `fields` set
    any other key."""
    return example(
        DocumentDeleted,
        {
            "document_id": document_id,
            "intervention_id": intervention_id,
            "deleted_by": None,
            "reason": "user",
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )
