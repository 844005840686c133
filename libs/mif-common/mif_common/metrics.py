"""Prometheus metrics shared by every service and the gateway."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_LATENCY = Histogram(
    "mif_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_PENDING = Gauge("mif_outbox_pending", "Outbox rows not yet published", ["service"])
OUTBOX_LAG = Gauge("mif_outbox_lag_seconds", "Age of the oldest unpublished outbox row", ["service"])
OUTBOX_PUBLISHED = Counter("mif_outbox_published_total", "Events published by the relay", ["service"])
OUTBOX_FAILURES = Counter("mif_outbox_publish_failures_total", "Failed publish attempts", ["service"])
CONSUMED = Counter("mif_consumer_messages_total", "Messages handled by consumers", ["consumer", "outcome"])
DEAD_LETTERS = Counter(
    "mif_consumer_dead_letters_total", "Messages given up on (rejected towards the DLQ)", ["consumer"]
)


class MetricsMiddleware:
    """Pure ASGI latency histogram labelled by route template (not raw path, to bound cardinality)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_LATENCY.labels(self.service, scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
