"""Domain events: envelope, transactional outbox, relay, idempotent consumers, topology."""

from mif_common.events.broker import Broker
from mif_common.events.consumer import EventConsumer, Handler, PermanentEventError
from mif_common.events.envelope import CloudEvent, EventPayload
from mif_common.events.outbox import add_event
from mif_common.events.relay import OutboxRelay

__all__ = [
    "Broker",
    "CloudEvent",
    "EventConsumer",
    "EventPayload",
    "Handler",
    "OutboxRelay",
    "PermanentEventError",
    "add_event",
]
