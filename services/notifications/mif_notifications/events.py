"""Events the notifications service publishes (docs/events/notifications.md).

Every delivery row (one notification on one external channel) ends with exactly one of them: `sent`
when the channel accepted it, `failed` when it was given up (attempts exhausted, or a channel this
installation cannot deliver on).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from mif_common.events import EventPayload


class DeliveryEvent(EventPayload):
    notification_id: int
    user_id: int
    type: str
    canal: str
    titre: str
    intervention_id: int | None = None
    attempts: int
    # The event that caused the notification (None for a manual one).
    source_event_id: str | None = None
    source_event_type: str | None = None
    occurred_at: datetime


class NotificationSent(DeliveryEvent):
    event_type: ClassVar[str] = "notifications.notification.sent.v1"


class NotificationFailed(DeliveryEvent):
    event_type: ClassVar[str] = "notifications.notification.failed.v1"
    error: str


ALL_EVENTS = (NotificationSent, NotificationFailed)
