"""The service's own surface: probes, metrics, OpenAPI."""

from __future__ import annotations

import httpx


async def test_probes_metrics_and_openapi(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json()["status"] == "ok"
    ready = await client.get("/health/ready")
    assert ready.json()["checks"]["database"] == "ok"
    metrics = await client.get("/metrics")
    assert "mif_planning_scheduler_events_total" in metrics.text
    spec = (await client.get("/api/v1/planning/openapi.json")).json()
    paths = {p for p in spec["paths"] if p.startswith("/api/")}
    assert {
        "/api/v1/techniciens",
        "/api/v1/techniciens/competences",
        "/api/v1/techniciens/competences/{competence_id}",
        "/api/v1/techniciens/recommandation",
        "/api/v1/techniciens/me",
        "/api/v1/techniciens/{technicien_id}",
        "/api/v1/techniciens/{technicien_id}/ical-token",
        "/api/v1/planning",
        "/api/v1/planning/calendrier",
        "/api/v1/planning/checklists",
        "/api/v1/planning/checklists/{checklist_id}",
        "/api/v1/planning/ical/{token}",
        "/api/v1/planning/{plan_id}",
        "/api/v1/planning/{plan_id}/dates",
        "/api/v1/planning/{plan_id}/historique",
    } == paths
    assert (await client.get("/api/v1/planning/docs")).status_code == 200
