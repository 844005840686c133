"""Events as tests hand them to a consumer: the envelope the owning service's relay would publish."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mif_common.events import CloudEvent

# The plugin's `deliver` fixture: `deliver(event_type, data, event_id=..., **envelope)` or
# `deliver(cloud_event)`; False when the consumer had already handled that event id.
Deliver = Callable[..., Awaitable[bool]]


def envelope(event_type: str, data: Mapping[str, Any], *, event_id: str | None = None, **fields: Any) -> CloudEvent:
    """A CloudEvent as the owning service's relay publishes it: source `/mif/<service>`, subject the
    entity's id (every payload starts with it). `fields` set other envelope attributes (`time`, ...)."""
    service = event_type.split(".", 1)[0]
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=f"/mif/{service}",
        type=event_type,
        subject=str(next(iter(data.values()), "")),
        data=dict(data),
        **fields,
    )
