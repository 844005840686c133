"""Liveness (no I/O) and readiness (database and broker) probes."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="Process is up (no I/O), and which build it runs")
async def live(request: Request) -> dict[str, str]:
    build = getattr(request.app.state, "build", None)
    return {"status": "ok", **(build.as_dict() if build is not None else {})}


@router.get("/health/ready", summary="Database and broker reachable")
async def ready(request: Request) -> JSONResponse:
    checks: dict[str, Any] = {}
    state = request.app.state
    try:
        async with asyncio.timeout(2):
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason is reported
        checks["database"] = f"unavailable: {type(exc).__name__}"
    settings = getattr(state, "settings", None)
    # With background work switched off (tests, one-off tools) nothing connects to the broker.
    broker = getattr(state, "broker", None) if getattr(settings, "background_tasks", True) else None
    if broker is not None:
        checks["broker"] = "ok" if broker.is_connected else "unavailable"
    consumer = getattr(state, "consumer", None)
    if consumer is not None:
        # Until its queue is declared and bound, events published now would not reach this service.
        checks["consumer"] = "ok" if consumer.queue is not None else "starting"
    follower = getattr(state, "token_state_follower", None)
    if follower is not None:
        # Until its queue is bound, a deactivation would reach this process only with the next snapshot.
        checks["token_states"] = "ok" if follower.subscribed.is_set() else "starting"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)
