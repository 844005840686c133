"""The service's own surface: health, metrics, its OpenAPI document (multipart body, retention rule)."""

from __future__ import annotations

import httpx

from mif_documents.testing import Headers, Known, Upload, pdf_bytes


async def test_health_and_metrics(
    client: httpx.AsyncClient, manager: Headers, upload: Upload, known_intervention: Known
) -> None:
    assert (await client.get("/health/live")).json()["status"] == "ok"
    ready = await client.get("/health/ready")
    assert ready.json()["checks"]["database"] == "ok"
    await upload(await known_intervention(), manager, pdf_bytes())
    await upload(await known_intervention(), manager, b"\x7fELF" + bytes(100))
    metrics = (await client.get("/metrics")).text
    assert 'mif_documents_uploads_total{outcome="accepted"}' in metrics
    assert 'mif_documents_uploads_total{outcome="refused_415"}' in metrics
    assert "mif_documents_uploaded_bytes_total" in metrics
    assert 'mif_http_request_duration_seconds_count{method="POST",route="/api/v1/documents"' in metrics


async def test_openapi_documents_the_upload_body_and_the_retention_rule(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/documents/openapi.json")).json()
    assert "Retention" in document["info"]["description"]
    paths = document["paths"]
    assert {p for p in paths if p.startswith("/api/")} == {
        "/api/v1/documents",
        "/api/v1/documents/fichier/{document_id}",
        "/api/v1/documents/{intervention_id}",
        "/api/v1/documents/{document_id}/download",
        "/api/v1/documents/{document_id}",
    }
    body = paths["/api/v1/documents"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and body["properties"]["file"]["format"] == "binary"
    assert "security" not in paths["/api/v1/documents/{document_id}/download"]["get"]
