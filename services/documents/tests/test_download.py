"""Downloads through the signed URL: no Authorization header, forged and expired links are 404,
`Range` requests, headers, and the signing secret shared by every replica."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from mif_common.config import ServiceSettings
from mif_documents.config import DocumentsSettings
from mif_documents.main import create_app
from mif_documents.signing import SECRET_FILE, UrlSecretError
from mif_documents.testing import Headers, Known, Upload, pdf_bytes

SIZE = 199_999  # ragged on purpose: not a multiple of any chunk size
NOT_FOUND = "This download link is invalid or has expired; list the documents again to get a fresh link."


@pytest.fixture
async def uploaded(manager: Headers, upload: Upload, known_intervention: Known) -> tuple[dict[str, Any], bytes]:
    content = pdf_bytes(SIZE)
    response = await upload(await known_intervention(), manager, content, filename="plan.pdf")
    assert response.status_code == 201, response.text
    return response.json(), content


def link_parts(path: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(path)
    return parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == NOT_FOUND


async def test_the_link_works_without_authorization_and_a_token_is_not_needed(
    client: httpx.AsyncClient, uploaded: tuple[dict[str, Any], bytes]
) -> None:
    document, content = uploaded
    response = await client.get(document["path"])
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["etag"] == f'"{document["sha256"]}"'
    assert response.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p, q: (p, {**q, "sig": q["sig"][:-2] + ("AA" if not q["sig"].endswith("AA") else "BB")}),
        lambda p, q: (p, {**q, "expires": str(int(q["expires"]) + 3600)}),  # extended by hand
        lambda p, q: (p.replace(p.split("/")[-2], str(int(p.split("/")[-2]) + 1)), q),  # another document
        lambda p, q: (p, {"expires": q["expires"]}),
        lambda p, q: (p, {"sig": q["sig"]}),
        lambda p, q: (p, {}),
        lambda p, q: (p, {**q, "expires": "-1"}),
        lambda p, q: (p, {**q, "sig": "é" * 10}),
    ],
    ids=["sig", "expires", "other-id", "no-sig", "no-expires", "nothing", "negative", "non-ascii"],
)
async def test_a_forged_link_is_404(
    client: httpx.AsyncClient, uploaded: tuple[dict[str, Any], bytes], tamper: Any
) -> None:
    path, query = tamper(*link_parts(uploaded[0]["path"]))
    assert_not_found(await client.get(path, params=query))


async def test_an_expired_link_is_404(
    client: httpx.AsyncClient, app: FastAPI, uploaded: tuple[dict[str, Any], bytes]
) -> None:
    signer = app.state.signer
    expired = signer.path(uploaded[0]["id"], now=time.time() - signer.ttl_seconds - 1)
    assert_not_found(await client.get(expired))
    fresh = signer.path(uploaded[0]["id"], now=time.time() - signer.ttl_seconds + 30)
    assert (await client.get(fresh)).status_code == 200


async def test_the_link_of_a_deleted_document_is_404(
    client: httpx.AsyncClient, manager: Headers, uploaded: tuple[dict[str, Any], bytes]
) -> None:
    document, _ = uploaded
    assert (await client.delete(f"/api/v1/documents/{document['id']}", headers=manager)).status_code == 204
    assert_not_found(await client.get(document["path"]))


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=65530-65545", 65530, 65546),  # across the 64 KiB boundary
        ("bytes=199000-", 199000, SIZE),
        ("bytes=-10", SIZE - 10, SIZE),
        ("bytes=199990-400000", 199990, SIZE),  # past the end: up to the end
        ("bytes=-999999", 0, SIZE),
    ],
)
async def test_a_single_range_is_206(
    client: httpx.AsyncClient, uploaded: tuple[dict[str, Any], bytes], header: str, start: int, end: int
) -> None:
    document, content = uploaded
    response = await client.get(document["path"], headers={"Range": header})
    assert response.status_code == 206
    assert response.content == content[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(content)}"
    assert response.headers["content-length"] == str(end - start)


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=abc", "bytes=9-3", "bytes=--5"])
async def test_other_ranges_get_the_whole_file(
    client: httpx.AsyncClient, uploaded: tuple[dict[str, Any], bytes], header: str
) -> None:
    document, content = uploaded
    response = await client.get(document["path"], headers={"Range": header})
    assert response.status_code == 200
    assert response.content == content


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", "bytes=999999-1000000", "bytes=-0"])
async def test_an_unsatisfiable_range_is_416(
    client: httpx.AsyncClient, uploaded: tuple[dict[str, Any], bytes], header: str
) -> None:
    response = await client.get(uploaded[0]["path"], headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["content-range"] == f"bytes */{SIZE}"


async def test_if_range_with_another_version_gets_the_whole_file(
    client: httpx.AsyncClient, uploaded: tuple[dict[str, Any], bytes]
) -> None:
    document, content = uploaded
    stale = await client.get(document["path"], headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == content
    same = await client.get(document["path"], headers={"Range": "bytes=0-9", "If-Range": f'"{document["sha256"]}"'})
    assert same.status_code == 206 and same.content == content[:10]


async def test_replicas_sharing_the_storage_agree_on_links(
    mif_settings: ServiceSettings, uploaded: tuple[dict[str, Any], bytes], storage_dir: Path
) -> None:
    """No per-process secret: another app (a second replica, or this one restarted) accepts the link."""
    assert (storage_dir / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    other = create_app(mif_settings)  # type: ignore[arg-type]
    async with other.router.lifespan_context(other):
        _, query = link_parts(uploaded[0]["path"])
        assert other.state.signer.verify(uploaded[0]["id"], query["expires"], query["sig"])


async def test_a_configured_secret_is_used(mif_settings: ServiceSettings, tmp_path: Path) -> None:
    assert isinstance(mif_settings, DocumentsSettings)
    settings = mif_settings.model_copy(update={"url_secret": SecretStr("s" * 48), "storage_dir": tmp_path})
    one, two = create_app(settings), create_app(settings.model_copy(update={"storage_dir": tmp_path / "other"}))
    async with one.router.lifespan_context(one), two.router.lifespan_context(two):
        assert one.state.signer.path(5, now=1000) == two.state.signer.path(5, now=1000)
    assert not (tmp_path / SECRET_FILE).exists()


@pytest.mark.parametrize("secret", [None, "changeme", "CHANGE-ME-documents-url-secret", "short"])
async def test_production_refuses_to_start_without_a_real_secret(
    mif_settings: ServiceSettings, tmp_path: Path, secret: str | None
) -> None:
    assert isinstance(mif_settings, DocumentsSettings)
    settings = mif_settings.model_copy(
        update={
            "environment": "production",
            "url_secret": SecretStr(secret) if secret else None,
            "storage_dir": tmp_path,
        }
    )
    app = create_app(settings)
    with pytest.raises(UrlSecretError, match="MIF_DOCUMENTS_URL_SECRET"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / SECRET_FILE).exists()
