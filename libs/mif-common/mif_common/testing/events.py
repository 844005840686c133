"""Events as tests hand them to a consumer: the envelope the owning service's relay would publish, and
example `data` checked against the publisher's payload model."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any

from mif_common.events import CloudEvent, EventPayload

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


def example(model: type[EventPayload], fields: Mapping[str, Any]) -> dict[str, Any]:
    """`data` of a `model` event made of `fields`, validated by the publisher's own payload model (an
    example cannot drift from the contract: a field the model comes to require fails here, in every
    consumer's tests), dates as ISO strings as on the wire. Keys the model does not know are kept: a
    consumer must ignore them."""
    model.model_validate(fields)
    return {key: value.isoformat() if isinstance(value, date) else value for key, value in fields.items()}
