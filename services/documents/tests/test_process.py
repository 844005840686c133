"""The documents service as a real process (uvicorn, its own database, the stand-in for interventions
and auth): concurrent uploads, an oversized upload cut off by the real server, a crash in the middle
of an upload (SIGKILL) that leaves nothing served and nothing behind once the cleanup ran, and the
refusal to start with encryption on and no key."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from mif_common.db import make_engine
from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import TestDatabase
from mif_common.testing.processes import ServiceProcess
from mif_documents.encryption import Keyring
from mif_documents.jobs import cleanup_once
from mif_documents.storage import TEMP_DIR_NAME, LocalStorage
from mif_documents.testing import TEST_UPLOAD_LIMIT, StandIn, multipart, pdf_bytes, png_bytes
from mif_documents.vault import Vault

pytestmark = pytest.mark.e2e


@dataclass
class Running:
    process: ServiceProcess
    storage_dir: Path
    engine: AsyncEngine
    standin: StandIn
    keys: TestKeys

    def headers(self, role: str = "responsable", **claims: Any) -> dict[str, str]:
        claims.setdefault("user_id", 1002)
        return {"Authorization": f"Bearer {self.keys.token(role, **claims)}"}

    def stored(self) -> set[str]:
        return {p.name for p in self.storage_dir.glob("??/??/*")}

    def staged(self) -> list[Path]:
        return list((self.storage_dir / TEMP_DIR_NAME).glob("*.part"))

    async def rows(self, intervention_id: int) -> int:
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM document WHERE intervention_id = :i"), {"i": intervention_id}
            )
        return int(count or 0)


def process_env(database: TestDatabase, amqp_url: str, storage_dir: Path, standin: StandIn) -> dict[str, str]:
    return {
        "MIF_ENVIRONMENT": "test",
        "MIF_LOG_JSON": "false",
        "MIF_AMQP_URL": amqp_url,
        "MIF_DOCUMENTS_DATABASE_URL": database.url_for("documents"),
        "MIF_DOCUMENTS_STORAGE_DIR": str(storage_dir),
        "MIF_DOCUMENTS_AUTH_URL": standin.url,  # the JWKS of the test keys
        "MIF_DOCUMENTS_INTERVENTIONS_URL": standin.url,
        "MIF_DOCUMENTS_MAX_UPLOAD_BYTES": str(TEST_UPLOAD_LIMIT),
        "MIF_DOCUMENTS_BACKGROUND_TASKS": "false",  # the cleanup is run by the tests
    }


@pytest.fixture(scope="module")
async def running(
    mif_fresh_database: Any,
    mif_amqp_url: str,
    standin: StandIn,
    mif_keys: TestKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Running]:
    database: TestDatabase = await asyncio.to_thread(mif_fresh_database, "documents_proc")
    storage_dir = tmp_path_factory.mktemp("documents-process-storage")
    process = ServiceProcess(
        "documents",
        "mif_documents.main:create_app",
        env=process_env(database, mif_amqp_url, storage_dir, standin),
        log_dir=tmp_path_factory.mktemp("documents-process-logs"),
    )
    await asyncio.to_thread(process.start)
    engine = make_engine(database.url_for("documents"), schema="documents", pool_size=2)
    try:
        yield Running(process, storage_dir, engine, standin, mif_keys)
    finally:
        await asyncio.to_thread(process.stop)
        await engine.dispose()


_next = iter(range(70_000, 80_000))


def new_intervention(running: Running, **fields: Any) -> int:
    intervention_id = next(_next)
    running.standin.answer(intervention_id, **fields)
    return intervention_id


async def test_concurrent_uploads_each_get_their_own_file(running: Running) -> None:
    intervention_id = new_intervention(running, statut="en_cours", client_id=71)
    contents = [pdf_bytes(50_000 + i * 1000) if i % 2 else png_bytes(40_000 + i) for i in range(12)]
    before = running.stored()

    async with httpx.AsyncClient(base_url=running.process.url, timeout=30) as http:

        async def send(i: int, content: bytes) -> dict[str, Any]:
            headers = running.headers() if i % 3 else running.headers("client", user_id=3000 + i, client_id=71)
            body, content_headers = multipart(content, filename=f"piece-{i}.bin")
            response = await http.post(
                "/api/v1/documents",
                params={"intervention_id": intervention_id},
                content=body,
                headers=headers | content_headers,
            )
            assert response.status_code == 201, response.text
            document: dict[str, Any] = response.json()
            return document

        documents = await asyncio.gather(*(send(i, c) for i, c in enumerate(contents)))
        assert len({d["id"] for d in documents}) == len(contents)
        downloads = await asyncio.gather(*(http.get(d["path"]) for d in documents))
    for document, content, download in zip(documents, contents, downloads, strict=True):
        assert download.status_code == 200
        assert download.content == content
        assert document["sha256"] == hashlib.sha256(content).hexdigest()
    assert len(running.stored() - before) == len(contents)
    assert running.staged() == []
    assert await running.rows(intervention_id) == len(contents)


async def test_an_oversized_stream_is_answered_413_before_the_body_ends(running: Running) -> None:
    """A raw HTTP/1.1 client sends a chunked upload and stops writing a little past the limit: the
    413 arrives although the body never ended (the service stopped reading at the limit)."""
    intervention_id = new_intervention(running)
    head, headers = multipart(b"", filename="huge.pdf")
    opening = head.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    token = running.headers()["Authorization"]
    reader, writer = await asyncio.open_connection("127.0.0.1", running.process.port)
    try:
        writer.write(
            (
                f"POST /api/v1/documents?intervention_id={intervention_id} HTTP/1.1\r\n"
                f"Host: 127.0.0.1\r\nAuthorization: {token}\r\nContent-Type: {headers['Content-Type']}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )

        def chunk(data: bytes) -> bytes:
            return f"{len(data):x}\r\n".encode() + data + b"\r\n"

        writer.write(chunk(opening))
        sent = 0
        while sent <= TEST_UPLOAD_LIMIT + 128 * 1024:  # a little past the limit, then silence
            writer.write(chunk(pdf_bytes(32 * 1024)))
            sent += 32 * 1024
            await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.startswith(b"HTTP/1.1 413"), status_line
        response_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert b"application/problem+json" in response_head
    finally:
        writer.close()
    assert running.staged() == []
    assert await running.rows(intervention_id) == 0


async def test_a_crash_mid_upload_leaves_nothing_served_and_the_cleanup_removes_what_is_left(running: Running) -> None:
    intervention_id = new_intervention(running)
    head, headers = multipart(b"", filename="interrompu.pdf")
    opening = head.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    staged_seen = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield opening + pdf_bytes(100_000)
        for _ in range(600):  # then trickle, until the process is killed
            if running.staged():
                staged_seen.set()
            yield b"x" * 1024
            await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=running.process.url, timeout=60) as http:
        request = asyncio.create_task(
            http.post(
                "/api/v1/documents",
                params={"intervention_id": intervention_id},
                content=body(),
                headers=running.headers() | headers,
            )
        )
        await asyncio.wait_for(staged_seen.wait(), 20)
        await asyncio.to_thread(running.process.kill)
        with pytest.raises(httpx.TransportError):
            await request

    leftovers = running.staged()
    assert leftovers, "the interrupted upload's staged file is left behind"
    assert await running.rows(intervention_id) == 0

    await asyncio.to_thread(running.process.start)  # restarted after the crash
    async with httpx.AsyncClient(base_url=running.process.url, timeout=30) as http:
        listed = await http.get(f"/api/v1/documents/{intervention_id}", headers=running.headers())
        assert listed.status_code == 200 and listed.json() == []
        body_ok, ok_headers = multipart(pdf_bytes(), filename="apres.pdf")
        again = await http.post(
            "/api/v1/documents",
            params={"intervention_id": intervention_id},
            content=body_ok,
            headers=running.headers() | ok_headers,
        )
        assert again.status_code == 201

    storage = LocalStorage(running.storage_dir)
    report = await cleanup_once(
        sessionmaker=async_sessionmaker(running.engine, expire_on_commit=False),
        vault=Vault(storage, Keyring.from_config(enabled=False, keys={}, active_id=None)),
        grace=timedelta(0),
    )
    assert report.incomplete >= len(leftovers)
    assert running.staged() == []
    async with httpx.AsyncClient(base_url=running.process.url, timeout=30) as http:
        assert (await http.get(again.json()["path"])).status_code == 200  # a committed document is kept


async def test_the_process_refuses_to_start_with_encryption_on_and_no_key(running: Running, tmp_path: Path) -> None:
    env = dict(running.process.env) | {
        "MIF_DOCUMENTS_STORAGE_DIR": str(tmp_path),
        "MIF_DOCUMENTS_ENCRYPTION_ENABLED": "true",
    }
    refused = ServiceProcess("documents-no-key", "mif_documents.main:create_app", env=env, log_dir=tmp_path)
    with pytest.raises(RuntimeError, match="exited at start-up") as failure:
        await asyncio.to_thread(refused.start)
    assert "Encryption at rest is enabled" in str(failure.value)
    assert "no active key is set" in str(failure.value)
