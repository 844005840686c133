"""Prometheus metrics of the notifications service (beside the suite's HTTP, outbox and consumer ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

NOTIFICATIONS_CREATED = Counter("mif_notifications_created_total", "Notifications created", ["type"])
DELIVERIES = Counter(
    "mif_notifications_deliveries_total", "Delivery attempts by channel and outcome", ["canal", "outcome"]
)
DIGESTS = Counter("mif_notifications_digests_total", "Lateness digest e-mails by outcome", ["outcome"])
DELIVERIES_PENDING = Gauge("mif_notifications_deliveries_pending", "Deliveries waiting to be sent")
LIVE_STREAMS = Gauge("mif_notifications_live_streams", "Open live streams (SSE) in this process")
