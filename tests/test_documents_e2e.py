"""The documents service end to end: real auth, assets, interventions, documents and gateway processes,
real PostgreSQL and RabbitMQ. The documents replica is fed the way interventions feeds it in production:
an `interventions.intervention.created.v1` CloudEvent on `mif.events`. Uploads and downloads go through
the gateway (streamed both ways); the download link works without an Authorization header, and a
forged or expired one is 404."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import httpx
import pytest

from mif_documents.signing import SECRET_FILE, UrlSigner
from mif_documents.testing import multipart, pdf_bytes, png_bytes
from mif_interventions.testing import intervention_data
from tests.support import Suite, event, publish, wait_for

pytestmark = pytest.mark.e2e

Headers = dict[str, str]


def known_intervention(suite: Suite, headers: Headers, **fields: Any) -> int:
    """An intervention documents learns of by event; ids far above what interventions and assets hand out.

    assets hears the event too: an equipment id of a real equipment would hold it "open" for ever."""
    intervention_id = 1_000_000_000 + secrets.randbelow(1_000_000_000)
    data = intervention_data(intervention_id, **{"equipement_id": intervention_id, **fields})
    publish(suite, event("interventions.intervention.created.v1", data, subject=str(intervention_id)))

    def listed() -> bool:
        response = httpx.get(f"{suite.url}/api/v1/documents/{intervention_id}", headers=headers)
        return response.status_code == 200

    wait_for(listed, what=f"intervention {intervention_id} in the documents replica")
    return intervention_id


def upload(
    suite: Suite, headers: Headers, intervention_id: int, content: bytes, filename: str, **fields: str
) -> httpx.Response:
    body, content_headers = multipart(content, filename=filename, fields=fields)
    return httpx.post(
        f"{suite.url}/api/v1/documents/",
        params={"intervention_id": intervention_id},
        content=body,
        headers=headers | content_headers,
        timeout=60,
    )


def test_upload_and_download_through_the_gateway_give_the_same_bytes(suite: Suite, admin_headers: Headers) -> None:
    intervention_id = known_intervention(suite, admin_headers)
    content = pdf_bytes(3 * 1024 * 1024 + 17)  # larger than what the gateway buffers: streamed both ways
    response = upload(
        suite, admin_headers, intervention_id, content, "Rapport d'intervention été.pdf", categorie="rapport"
    )
    assert response.status_code == 201, response.text
    document = response.json()
    assert document["sha256"] == hashlib.sha256(content).hexdigest()
    assert document["taille"] == len(content) and document["categorie"] == "rapport"

    with httpx.stream("GET", f"{suite.url}{document['path']}", timeout=60) as download:  # no Authorization
        assert download.status_code == 200
        received = b"".join(download.iter_raw())
        headers = download.headers
    assert received == content
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"] == (
        'attachment; filename="Rapport d\'intervention ete.pdf"; '
        "filename*=UTF-8''Rapport%20d%27intervention%20%C3%A9t%C3%A9.pdf"
    )
    part = httpx.get(f"{suite.url}{document['path']}", headers={"Range": "bytes=1048570-1048589"})
    assert part.status_code == 206
    assert part.content == content[1048570:1048590]
    assert part.headers["content-range"] == f"bytes 1048570-1048589/{len(content)}"

    metadata = httpx.get(f"{suite.url}/api/v1/documents/fichier/{document['id']}", headers=admin_headers)
    assert metadata.status_code == 200 and metadata.json()["filename"] == "Rapport d'intervention été.pdf"


def test_a_forged_or_expired_link_is_404(suite: Suite, admin_headers: Headers) -> None:
    intervention_id = known_intervention(suite, admin_headers)
    document = upload(suite, admin_headers, intervention_id, png_bytes(), "photo.png").json()
    parts = urlsplit(document["path"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}

    forged = httpx.get(f"{suite.url}{parts.path}", params={**query, "sig": "A" * len(query["sig"])})
    assert forged.status_code == 404
    assert forged.headers["content-type"] == "application/problem+json"
    longer = httpx.get(f"{suite.url}{parts.path}", params={**query, "expires": str(int(query["expires"]) + 86400)})
    assert longer.status_code == 404
    assert httpx.get(f"{suite.url}{parts.path}").status_code == 404

    # A correctly signed link whose time is up (signed with the service's own secret, an hour ago).
    secret = (Path(suite.env["MIF_DOCUMENTS_STORAGE_DIR"]) / SECRET_FILE).read_bytes().strip()
    signer = UrlSigner(secret, ttl_seconds=3600)
    expired = httpx.get(f"{suite.url}{signer.path(document['id'], now=time.time() - 3601)}")
    assert expired.status_code == 404
    assert expired.json()["detail"] == forged.json()["detail"]
    assert httpx.get(f"{suite.url}{signer.path(document['id'])}").status_code == 200


def test_each_organisation_lists_only_its_interventions_documents(
    suite: Suite, admin_headers: Headers, create_user: Callable[..., dict[str, Any]]
) -> None:
    organisations = []
    for _ in range(2):
        response = httpx.post(
            f"{suite.url}/api/v1/clients",
            json={"nom_entreprise": f"Société {uuid.uuid4().hex[:8]}"},
            headers=admin_headers,
        )
        assert response.status_code == 201, response.text
        organisations.append(response.json()["id"])
    ours, theirs = (create_user("client", client_id=org)["headers"] for org in organisations)
    intervention_id = known_intervention(suite, admin_headers, client_id=organisations[0])

    mine = upload(suite, ours, intervention_id, "Relevé du compteur : 4 512 h\n".encode(), "releve.txt")
    assert mine.status_code == 201, mine.text
    assert mine.json()["mime"] == "text/plain"
    managers = upload(suite, admin_headers, intervention_id, png_bytes(), "plaque.png", categorie="photo")
    assert managers.status_code == 201

    listed = httpx.get(f"{suite.url}/api/v1/documents/{intervention_id}", headers=ours)
    assert listed.status_code == 200
    assert [d["filename"] for d in listed.json()] == ["releve.txt", "plaque.png"]
    assert listed.headers["x-total-count"] == "2"
    hidden = httpx.get(f"{suite.url}/api/v1/documents/{intervention_id}", headers=theirs)
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == f"Intervention {intervention_id} does not exist or is not visible to you."
    assert upload(suite, theirs, intervention_id, png_bytes(), "x.png").status_code == 404
    everything_theirs = httpx.get(f"{suite.url}/api/v1/documents", headers=theirs)
    assert everything_theirs.status_code == 200 and everything_theirs.json() == []

    # The uploader deletes their own; the other organisation cannot touch it.
    document_id = mine.json()["id"]
    assert httpx.delete(f"{suite.url}/api/v1/documents/{document_id}", headers=theirs).status_code == 404
    assert httpx.delete(f"{suite.url}/api/v1/documents/{document_id}", headers=ours).status_code == 204
    assert httpx.get(f"{suite.url}{mine.json()['path']}").status_code == 404


def test_refusals_come_back_through_the_gateway(suite: Suite, admin_headers: Headers) -> None:
    intervention_id = known_intervention(suite, admin_headers)
    executable = b"\x7fELF\x02\x01\x01\x00" + bytes(4000)
    refused = upload(suite, admin_headers, intervention_id, executable, "rapport.pdf")
    assert refused.status_code == 415
    assert refused.headers["content-type"] == "application/problem+json"
    empty = upload(suite, admin_headers, intervention_id, b"", "vide.pdf")
    assert empty.status_code == 422
    too_big = upload(suite, admin_headers, intervention_id, pdf_bytes(10 * 1024 * 1024 + 1), "gros.pdf")
    assert too_big.status_code == 413
    assert httpx.get(f"{suite.url}/api/v1/documents/{intervention_id}", headers=admin_headers).json() == []


def test_an_upload_is_announced_on_the_broker(suite: Suite, admin_headers: Headers) -> None:
    intervention_id = known_intervention(suite, admin_headers, client_id=4242)

    async def scenario() -> dict[str, Any]:
        connection = await aio_pika.connect(suite.amqp_url)
        try:
            channel = await connection.channel()
            exchange = await channel.declare_exchange("mif.events", aio_pika.ExchangeType.TOPIC, durable=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, routing_key="documents.document.uploaded.v1")
            response = await asyncio.to_thread(upload, suite, admin_headers, intervention_id, pdf_bytes(), "a.pdf")
            assert response.status_code == 201, response.text
            async with asyncio.timeout(15):
                async with queue.iterator() as messages:
                    async for message in messages:
                        async with message.process():
                            event: dict[str, Any] = json.loads(message.body)
                        if event["data"]["intervention_id"] == intervention_id:
                            return event
        finally:
            await connection.close()
        raise AssertionError("no uploaded event")

    event = asyncio.run(scenario())
    assert event["type"] == "documents.document.uploaded.v1" and event["source"] == "/mif/documents"
    assert event["data"]["client_id"] == 4242 and event["data"]["filename"] == "a.pdf"
