"""Events the assets service consumes: the interventions that move an equipment's `statut`.

The contract of those events is docs/events/interventions-contract.md. The local replica
`intervention_ref` (which equipment an intervention is on, and whether it is still open: what refuses
deleting a referenced equipment and decides when an equipment is `operationnel` again) is kept from the
facts that can change those: created, updated (it may move to another equipment), closed, cancelled,
archived; started and resumed also put the equipment `en maintenance` (DOMAIN.md §4). The other verbs
(assigned, unassigned, paused, late) keep an intervention open on its equipment: assets does not
subscribe to them, so they cost it nothing (its replica's `statut` is the last of the facts above).
Facts older than the replica's are ignored, so reordering is harmless; the consumer wrapper's inbox
makes a duplicate delivery a no-op.

`interventions.checklist.mesure.v1` (a `mesure` step with a `compteur_code` filled on an intervention's
checklist) is a reading of the equipment's meter of that code: assets owns meters and readings, so it
records it (source `manuel`) through the ingestion HTTP and MQTT batches use, and announces it with the
same `assets.releves.recorded.v1` that planning's meter rules read. A redelivery stores nothing new (the
inbox, and the reading's (meter, instant) key); a code the equipment has no meter for, or a value the
meter refuses (a counter going back), is logged and skipped, never an error that would stop the queue.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets import replicas
from mif_assets.schemas import ChecklistMesureFact, InterventionFact
from mif_common.events import CloudEvent, Handler
from mif_common.events.contracts import intervention_event_type


def _verb(event: CloudEvent) -> str:
    return event.type.split(".")[2]


async def on_intervention_created(session: AsyncSession, event: CloudEvent) -> None:
    fact = InterventionFact.model_validate(event.data)
    await replicas.intervention_created(session, fact=fact, event_id=event.id)


async def on_intervention_work_started(session: AsyncSession, event: CloudEvent) -> None:
    fact = InterventionFact.model_validate(event.data)
    await replicas.intervention_work_started(session, fact=fact, event_id=event.id, verb=_verb(event))


async def on_intervention_ended(session: AsyncSession, event: CloudEvent) -> None:
    fact = InterventionFact.model_validate(event.data)
    await replicas.intervention_ended(session, fact=fact, event_id=event.id, verb=_verb(event))


async def on_intervention_updated(session: AsyncSession, event: CloudEvent) -> None:
    fact = InterventionFact.model_validate(event.data)
    await replicas.intervention_updated(session, fact=fact)


async def on_checklist_measure(session: AsyncSession, event: CloudEvent) -> None:
    fact = ChecklistMesureFact.model_validate(event.data)
    await replicas.checklist_measure(session, fact=fact, event_id=event.id)


CHECKLIST_MESURE = "interventions.checklist.mesure.v1"

HANDLERS: dict[str, Handler] = {
    intervention_event_type("created"): on_intervention_created,
    **{intervention_event_type(v): on_intervention_work_started for v in ("started", "resumed")},
    **{intervention_event_type(v): on_intervention_ended for v in ("closed", "cancelled", "archived")},
    intervention_event_type("updated"): on_intervention_updated,
    CHECKLIST_MESURE: on_checklist_measure,
}
