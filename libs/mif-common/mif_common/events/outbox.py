"""Writing events in the business transaction (the transactional outbox)."""

from __future__ import annotations

import uuid

from sqlalchemy import ClauseElement, String, bindparam, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events.envelope import CloudEvent, EventPayload
from mif_common.events.tables import outbox
from mif_common.request_context import causation_id_var, current_request_id
from mif_common.statements import Statement


def _add() -> ClauseElement:
    # One round trip: the row, and the NOTIFY that wakes the relay at once instead of at its next poll
    # (delivered at commit only; PostgreSQL sends one per transaction however many events it holds).
    wake = select(func.pg_notify(bindparam("channel", type_=String()), "").label("woken")).subquery()
    return insert(outbox).from_select(
        ["id", "type", "subject", "envelope", "created_at"],
        select(
            bindparam("id", type_=outbox.c.id.type),
            bindparam("type", type_=outbox.c.type.type),
            bindparam("subject", type_=outbox.c.subject.type),
            bindparam("envelope", type_=outbox.c.envelope.type),
            # Not the column default now() (the transaction's start, equal for all its events): the
            # relay publishes in created_at order, so events of one transaction keep their order.
            func.clock_timestamp(),
        ).select_from(wake),
    )


# Every event of every service is written by this statement: compiled once, run on the asyncpg
# connection of the session (building and compiling it cost more CPU than PostgreSQL spends on it).
_ADD = Statement(_add, ["id", "type", "subject", "envelope", "channel"])


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
    # Written after the business rows it belongs with, as the ORM's autoflush did when this went through the
    # session (a failing flush must fail before an event is written: callers may catch it in a savepoint).
    if session.new or session.dirty or session.deleted:
        await session.flush()
    await _ADD.fetch(
        await session.connection(),
        {
            "id": event_id,
            "type": envelope.type,
            "subject": envelope.subject,
            "envelope": envelope.model_dump_json(),  # jsonb's text form, as the connection's codec takes it
            "channel": notify_channel(source),
        },
    )
    return envelope
