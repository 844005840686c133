"""Events the notifications service consumes (through the shared consumer wrapper: each event is
handled once, its writes and the inbox row commit together).

- `auth.user.*.v1` → the `user_ref` replica (addresses, roles, organisations); `created` also welcomes.
- `planning.technicien.*.v1` → the `technicien_ref` replica (which user a technician is).
- `interventions.intervention.*.v1` → the `intervention_ref` replica; assignment, start, closure,
  cancellation and lateness notify (see `replicas`). Pausing and resuming notify nobody and change none
  of what later notifications read (who the technician, requester and organisation are, whether it has
  ended): notifications does not subscribe to them, so they cost nothing here.
- `planning.occurrence.reminder.v1`, `planning.plan.overdue.v1` → `rappel` / `retard`.
- `planning.plan.suspended.v1` → `information` to every active manager.
- `planning.occurrence.due.v1` of `type` corrective (a seuil or variation rule triggered) →
  `information` to every active manager; the other occurrences notify nobody.
- `documents.document.uploaded.v1` → the intervention's participants.
- `auth.sign_in_attempts.failed.v1` → the account's user (its password is being guessed).
- `inventory.stock.low.v1` → `stock_bas` to every active manager (a part to order).
- `reports.export.completed.v1` / `reports.export.failed.v1` → `rapport_pret` / `rapport_echoue` to the
  job's requester only.

A payload that does not match its contract is a validation error: dead-lettered at once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events import CloudEvent, Handler
from mif_common.events.contracts import INTERVENTION_VERBS, intervention_event_type
from mif_notifications import replicas
from mif_notifications.schemas import (
    DocumentFact,
    DueFact,
    ExportCompletedFact,
    ExportFailedFact,
    InterventionFact,
    OccurrenceFact,
    OverdueFact,
    SignInFailuresFact,
    StockLowFact,
    SuspendedFact,
    TechnicienFact,
    UserFact,
)

# The intervention verbs taken: all but `paused` and `resumed`, which notify nobody and change nothing
# later notifications read.
INTERVENTION_VERBS_TAKEN = tuple(verb for verb in INTERVENTION_VERBS if verb not in ("paused", "resumed"))


def _verb(event: CloudEvent) -> str:
    return event.type.split(".")[2]


async def on_user_created(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.user_created(session, fact=UserFact.model_validate(event.data), event=event)


async def on_user_changed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.user_changed(session, fact=UserFact.model_validate(event.data), event=event)


async def on_technicien_changed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.technicien_changed(session, fact=TechnicienFact.model_validate(event.data))


async def on_intervention(session: AsyncSession, event: CloudEvent) -> None:
    fact = InterventionFact.model_validate(event.data)
    await replicas.intervention_changed(session, fact=fact, verb=_verb(event), event=event)


async def on_document_uploaded(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.document_uploaded(session, fact=DocumentFact.model_validate(event.data), event=event)


async def on_occurrence_reminder(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.occurrence_reminder(session, fact=OccurrenceFact.model_validate(event.data), event=event)


async def on_plan_overdue(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.plan_overdue(session, fact=OverdueFact.model_validate(event.data), event=event)


async def on_plan_suspended(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.plan_suspended(session, fact=SuspendedFact.model_validate(event.data), event=event)


async def on_occurrence_due(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.rule_triggered(session, fact=DueFact.model_validate(event.data), event=event)


async def on_sign_in_failures(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.sign_in_failures(session, fact=SignInFailuresFact.model_validate(event.data), event=event)


async def on_stock_low(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.stock_low(session, fact=StockLowFact.model_validate(event.data), event=event)


async def on_export_completed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.export_completed(session, fact=ExportCompletedFact.model_validate(event.data), event=event)


async def on_export_failed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.export_failed(session, fact=ExportFailedFact.model_validate(event.data), event=event)


HANDLERS: dict[str, Handler] = {
    "auth.user.created.v1": on_user_created,
    **{f"auth.user.{verb}.v1": on_user_changed for verb in ("updated", "deactivated", "activated")},
    **{f"planning.technicien.{verb}.v1": on_technicien_changed for verb in ("created", "updated", "deleted")},
    **{intervention_event_type(verb): on_intervention for verb in INTERVENTION_VERBS_TAKEN},
    "planning.occurrence.reminder.v1": on_occurrence_reminder,
    "planning.plan.overdue.v1": on_plan_overdue,
    "planning.plan.suspended.v1": on_plan_suspended,
    "planning.occurrence.due.v1": on_occurrence_due,
    "documents.document.uploaded.v1": on_document_uploaded,
    "auth.sign_in_attempts.failed.v1": on_sign_in_failures,
    "inventory.stock.low.v1": on_stock_low,
    "reports.export.completed.v1": on_export_completed,
    "reports.export.failed.v1": on_export_failed,
}
