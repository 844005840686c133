"""Events the documents service consumes: the replicas that decide who sees which documents.

- `interventions.intervention.*.v1` (docs/events/interventions-contract.md): the facts that can change
  who sees an intervention's documents (its organisation, its technician) or whether it takes uploads
  (`archived`: its documents are kept, read-only) upsert `intervention_ref` unless it holds a later fact
  (reordering is harmless): created, assigned, unassigned, updated, archived. The work's own progress
  (started, paused, resumed, late, closed, cancelled) changes neither: documents does not subscribe to
  it, so it costs nothing here (the replica's `statut` is the last of the facts above). `deleted` is
  not in the v1 contract; should it come, the intervention's documents are soft-deleted and their files
  removed after a grace period (docs/retention.md).
- `planning.technicien.*.v1` (docs/events/planning-contract.md): technicien_id → user_id, the newest
  `version` wins.

A duplicate delivery is skipped by the consumer wrapper's inbox; a `data` that does not match the
contract fails validation and goes to the dead-letter queue at once.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.db import session_settings
from mif_common.events import CloudEvent, Handler
from mif_common.events.contracts import intervention_event_type
from mif_documents import replicas
from mif_documents.config import DocumentsSettings
from mif_documents.schemas import InterventionFact, InterventionGone, TechnicienFact

TECHNICIEN_VERBS = ("created", "updated", "deleted")
# The intervention verbs taken: those that can change who sees its documents or whether it takes uploads.
INTERVENTION_VERBS_TAKEN = ("created", "assigned", "unassigned", "updated", "archived")
INTERVENTION_DELETED = "interventions.intervention.deleted.v1"


def technicien_event_type(verb: str) -> str:
    return f"planning.technicien.{verb}.v1"


async def on_intervention_fact(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.intervention_changed(session, fact=InterventionFact.model_validate(event.data))


async def on_technicien_fact(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.technicien_changed(session, fact=TechnicienFact.model_validate(event.data))


async def on_intervention_deleted(session: AsyncSession, event: CloudEvent) -> None:
    grace = timedelta(seconds=session_settings(session, DocumentsSettings).deleted_intervention_grace_seconds)
    await replicas.intervention_deleted(session, fact=InterventionGone.model_validate(event.data), grace=grace)


HANDLERS: dict[str, Handler] = {
    **{intervention_event_type(v): on_intervention_fact for v in INTERVENTION_VERBS_TAKEN},
    INTERVENTION_DELETED: on_intervention_deleted,
    **{technicien_event_type(v): on_technicien_fact for v in TECHNICIEN_VERBS},
}
