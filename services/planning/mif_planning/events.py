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


class RegleDeclenchee(BaseModel):
    """What a meter rule saw when it generated an occurrence."""

    declencheur: str  # usage | seuil | variation
    compteur_id: int
    compteur_code: str
    unite: str
    # usage: the accumulated usage reached and the multiple of the interval crossed; seuil: the reading
    # and the threshold; variation: the rate per hour and the limit.
    valeur: float
    seuil: float
    operateur: str | None = None  # seuil, variation: > or <
    debut_episode: datetime | None = None  # seuil, variation: the first reading beyond


class EtapeModele(BaseModel):
    """One step of a checklist template, as its events and plan occurrences carry it."""

    ordre: int
    type: str  # verification | mesure | texte | photo
    libelle: str
    obligatoire: bool
    unite: str | None = None
    min: float | None = None
    max: float | None = None
    compteur_code: str | None = None


class ChecklistSnapshot(BaseModel):
    """A checklist template as `planning.occurrence.due.v1` carries it (the optional `checklist`)."""

    id: int
    nom: str
    etapes: list[EtapeModele]


class ChecklistEvent(EventPayload):
    """A checklist template after the fact (all its steps, in order); `version` orders snapshots."""

    checklist_id: int
    nom: str
    description: str | None = None
    etapes: list[EtapeModele]
    version: int
    occurred_at: datetime


class ChecklistCreated(ChecklistEvent):
    event_type: ClassVar[str] = "planning.checklist.created.v1"


class ChecklistUpdated(ChecklistEvent):
    event_type: ClassVar[str] = "planning.checklist.updated.v1"


class ChecklistDeleted(ChecklistEvent):
    """The template is gone (its last snapshot, `version` one above the last update): interventions
    already holding a copy of its steps keep it."""

    event_type: ClassVar[str] = "planning.checklist.deleted.v1"


class OccurrenceEvent(EventPayload):
    occurrence_key: str
    planning_id: int
    equipement_id: int
    equipement_nom: str | None = None
    technicien_id: int | None = None
    due_at: datetime
    # The canonical frequency of a calendar plan; a meter rule's `declencheur` (usage, seuil, variation).
    frequence: str
    commentaire: str | None = None
    occurred_at: datetime
    # Optional (added within v1, issue #17), set by meter rules; absent (null) on calendar occurrences:
    # the intervention to create (preventive when absent, corrective for seuil and variation rules), its
    # priority (absent: normale) and title (absent: "Maintenance préventive - <equipement_nom>").
    type: str | None = None
    priorite: str | None = None
    titre: str | None = None
    regle: RegleDeclenchee | None = None


class OccurrenceDue(OccurrenceEvent):
    """One occurrence of a plan fell due: interventions creates exactly one intervention per
    `occurrence_key` (preventive, or the `type`, `priorite`, `titre` a condition rule gives: a corrective
    one, which notifications also tells every active manager about)."""

    event_type: ClassVar[str] = "planning.occurrence.due.v1"
    # Optional (added within v1): the plan's checklist template, which interventions copies onto the
    # preventive intervention it creates.
    checklist: ChecklistSnapshot | None = None


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
    ChecklistCreated,
    ChecklistUpdated,
    ChecklistDeleted,
)
