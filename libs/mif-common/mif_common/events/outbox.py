"""Writing events in the business transaction (the transactional outbox)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events.envelope import CloudEvent, EventPayload
from mif_common.events.tables import outbox
from mif_common.request_context import causation_id_var, current_request_id


def notify_channel(schema: str) -> str:
    return f"mif_outbox_{schema}"


async def add_event(session: AsyncSession, payload: EventPayload, *, subject: str | int | None = None) -> CloudEvent:
    """Queue `payload` for publication; it is sent only if the surrounding transaction commits.

    The event id is the outbox row id. Correlation comes from the current request (or the event being
    handled), causation from the event being handled.
    """
    source = str(session.info.get("source") or "mif")
    event_id = uuid.uuid4()
    envelope = CloudEvent(
        id=str(event_id),
        source=f"/mif/{source}",
        type=payload.event_type,
        subject=str(subject) if subject is not None else None,
        data=payload.model_dump(mode="json"),
        correlationid=current_request_id(),
        causationid=causation_id_var.get(),
    )
    # One round trip: the row, and the NOTIFY that wakes the relay at once instead of at its next poll
    # (delivered at commit only; PostgreSQL sends one per transaction however many events it holds).
    wake = select(func.pg_notify(notify_channel(source), "").label("woken")).subquery()
    await session.execute(
        insert(outbox).from_select(
            ["id", "type", "subject", "envelope", "created_at"],
            select(
                literal(event_id, outbox.c.id.type),
                literal(envelope.type, outbox.c.type.type),
                literal(envelope.subject, outbox.c.subject.type),
                literal(envelope.model_dump(mode="json"), outbox.c.envelope.type),
                # Not the column default now() (the transaction's start, equal for all its events): the
                # relay publishes in created_at order, so events of one transaction keep their order.
                func.clock_timestamp(),
            ).select_from(wake),
        )
    )
    return envelope
