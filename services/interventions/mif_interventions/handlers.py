"""Events the interventions service consumes.

- `assets.equipement.*.v1` keep the `equipement_ref` replica (an older version is ignored; `deleted`
  removes it);
- `planning.technicien.*.v1` keep `technicien_ref` (who may be assigned, whose interventions a
  technician sees);
- `planning.occurrence.due.v1` creates exactly one preventive intervention per occurrence key (with
  the steps of the plan's checklist template, when the event carries one);
- `planning.checklist.*.v1` keep `checklist_ref` (the templates a manager may add to an intervention);
- `auth.user.*.v1` keep `user_ref` (the dashboard's user counts);
- `documents.document.uploaded|deleted.v1` add a `document` row to the history;
- `inventory.intervention.parts_costed.v1` stores the intervention's `cout_pieces` (a higher version
  only) with a `pieces` row in the history.

The consumer wrapper's inbox makes a duplicate delivery a no-op; the handlers tolerate reordering.
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.db import session_settings
from mif_common.events import CloudEvent, Handler
from mif_interventions import checklists, creation, replicas
from mif_interventions.config import InterventionsSettings
from mif_interventions.schemas import (
    ChecklistFact,
    DocumentFact,
    EquipementFact,
    OccurrenceFact,
    PartsCostFact,
    TechnicienFact,
    UserFact,
)

EQUIPEMENT_CHANGED = tuple(
    f"assets.equipement.{verb}.v1" for verb in ("created", "updated", "status_changed", "retired")
)
EQUIPEMENT_DELETED = "assets.equipement.deleted.v1"
TECHNICIEN_CHANGED = tuple(f"planning.technicien.{verb}.v1" for verb in ("created", "updated", "deleted"))
OCCURRENCE_DUE = "planning.occurrence.due.v1"
USER_CHANGED = tuple(f"auth.user.{verb}.v1" for verb in ("created", "updated", "deactivated", "activated"))
DOCUMENT_ADDED = "documents.document.uploaded.v1"
DOCUMENT_DELETED = "documents.document.deleted.v1"
PARTS_COSTED = "inventory.intervention.parts_costed.v1"
CHECKLIST_CHANGED = tuple(f"planning.checklist.{verb}.v1" for verb in ("created", "updated"))
CHECKLIST_DELETED = "planning.checklist.deleted.v1"


async def on_equipement_changed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.remember_equipement(session, fact=EquipementFact.model_validate(event.data))


async def on_equipement_deleted(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.forget_equipement(session, fact=EquipementFact.model_validate(event.data))


async def on_technicien_changed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.remember_technicien(session, fact=TechnicienFact.model_validate(event.data))


async def on_user_changed(session: AsyncSession, event: CloudEvent) -> None:
    # auth's user events carry no version: the envelope's time orders them.
    event_time = event.time if event.time.tzinfo is not None else event.time.replace(tzinfo=UTC)
    await replicas.remember_user(session, fact=UserFact.model_validate(event.data), event_time=event_time)


async def on_document_added(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.record_document(session, fact=DocumentFact.model_validate(event.data))


async def on_document_deleted(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.record_document(session, fact=DocumentFact.model_validate(event.data), deleted=True)


async def on_parts_costed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.record_parts_cost(session, fact=PartsCostFact.model_validate(event.data))


async def on_checklist_changed(session: AsyncSession, event: CloudEvent) -> None:
    await checklists.remember_checklist(session, fact=ChecklistFact.model_validate(event.data))


async def on_checklist_deleted(session: AsyncSession, event: CloudEvent) -> None:
    await checklists.remember_checklist(session, fact=ChecklistFact.model_validate(event.data), deleted=True)


async def on_occurrence_due(session: AsyncSession, event: CloudEvent) -> None:
    await creation.create_from_occurrence(
        session,
        fact=OccurrenceFact.model_validate(event.data),
        settings=session_settings(session, InterventionsSettings),  # the SLA deadlines
    )


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(EQUIPEMENT_CHANGED, on_equipement_changed),
    EQUIPEMENT_DELETED: on_equipement_deleted,
    **dict.fromkeys(TECHNICIEN_CHANGED, on_technicien_changed),
    OCCURRENCE_DUE: on_occurrence_due,
    **dict.fromkeys(USER_CHANGED, on_user_changed),
    DOCUMENT_ADDED: on_document_added,
    DOCUMENT_DELETED: on_document_deleted,
    PARTS_COSTED: on_parts_costed,
    **dict.fromkeys(CHECKLIST_CHANGED, on_checklist_changed),
    CHECKLIST_DELETED: on_checklist_deleted,
}
