"""Events the planning service publishes (docs/events/planning-contract.md)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel

from mif_common.events import EventPayload


class CompetenceNiveau(BaseModel):
    id: int
    nom: str
    niveau: str


class TechnicienEvent(EventPayload):
    """A snapshot of a technician's profile after the fact; `version` orders snapshots."""

    technicien_id: int
    user_id: int
    full_name: str
    username: str
    email: str
    equipe: str | None = None
    zone: str | None = None
    disponibilite: str
    is_active: bool
    competences: list[CompetenceNiveau]
    version: int
    occurred_at: datetime


class TechnicienCreated(TechnicienEvent):
    event_type: ClassVar[str] = "planning.technicien.created.v1"


class TechnicienUpdated(TechnicienEvent):
    event_type: ClassVar[str] = "planning.technicien.updated.v1"


class TechnicienDeleted(TechnicienEvent):
    """Soft delete: `is_active` is false."""

    event_type: ClassVar[str] = "planning.technicien.deleted.v1"


class OccurrenceEvent(EventPayload):
    occurrence_key: str
    planning_id: int
    equipement_id: int
    equipement_nom: str | None = None
    technicien_id: int | None = None
    due_at: datetime
    frequence: str
    commentaire: str | None = None
    occurred_at: datetime


class OccurrenceDue(OccurrenceEvent):
    """One occurrence of a plan fell due: interventions creates exactly one preventive intervention
    per `occurrence_key`."""

    event_type: ClassVar[str] = "planning.occurrence.due.v1"


class OccurrenceReminder(OccurrenceEvent):
    """An occurrence falls due in `lead_minutes`."""

    event_type: ClassVar[str] = "planning.occurrence.reminder.v1"
    lead_minutes: int


class PlanOverdue(EventPayload):
    """An occurrence's intervention was not closed in time; the plan went `en_retard`."""

    event_type: ClassVar[str] = "planning.plan.overdue.v1"
    planning_id: int
    equipement_id: int
    equipement_nom: str | None = None
    technicien_id: int | None = None
    occurrence_key: str
    intervention_id: int | None = None
    due_at: datetime
    occurred_at: datetime


class PlanSuspended(EventPayload):
    """The scheduler's circuit breaker suspended a plan (statut `suspendu`): generating its next
    occurrence (`due_at`) would have made more than `max_per_hour` occurrences of that plan within an
    hour (`generated_last_hour` were already generated). Nothing is generated until a manager resumes
    it; `reason` is the sentence its history shows. Sent once per suspension; notifications tells every
    active manager."""

    event_type: ClassVar[str] = "planning.plan.suspended.v1"
    planning_id: int
    equipement_id: int
    equipement_nom: str | None = None
    technicien_id: int | None = None
    frequence: str
    due_at: datetime
    generated_last_hour: int
    max_per_hour: int
    reason: str
    occurred_at: datetime


ALL_EVENTS = (
    TechnicienCreated,
    TechnicienUpdated,
    TechnicienDeleted,
    OccurrenceDue,
    OccurrenceReminder,
    PlanOverdue,
    PlanSuspended,
)
