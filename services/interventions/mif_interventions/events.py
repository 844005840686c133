"""Events the interventions service publishes: docs/events/interventions-contract.md, exactly.

Every type carries the same snapshot of the intervention after the fact, so a consumer (assets'
equipment statut, notifications) can act on any of them alone and drop one older than what it holds
(`occurred_at`).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from mif_common.events import EventPayload


class InterventionEvent(EventPayload):
    intervention_id: int
    equipement_id: int
    client_id: int | None
    technicien_id: int | None
    statut: str
    previous_statut: str | None
    type: str
    priorite: str
    urgence: bool
    titre: str
    actor_id: int | None
    occurred_at: datetime
    # Optional (added within v1): set on preventive interventions generated from a plan occurrence,
    # so planning links the intervention to its occurrence exactly.
    planning_id: int | None = None
    occurrence_key: str | None = None
    # Optional (added within v1, for reports' KPIs): the dates and the worked time after the fact.
    date_creation: datetime | None = None
    date_limite: datetime | None = None
    date_debut_travaux: datetime | None = None
    date_cloture: datetime | None = None
    duree_reelle: int | None = None  # minutes


class InterventionCreated(InterventionEvent):
    """Created (with a technician: already `affectee`)."""

    event_type: ClassVar[str] = "interventions.intervention.created.v1"


class InterventionAssigned(InterventionEvent):
    """A technician was assigned or reassigned."""

    event_type: ClassVar[str] = "interventions.intervention.assigned.v1"


class InterventionUnassigned(InterventionEvent):
    event_type: ClassVar[str] = "interventions.intervention.unassigned.v1"


class InterventionStarted(InterventionEvent):
    event_type: ClassVar[str] = "interventions.intervention.started.v1"


class InterventionPaused(InterventionEvent):
    event_type: ClassVar[str] = "interventions.intervention.paused.v1"


class InterventionResumed(InterventionEvent):
    event_type: ClassVar[str] = "interventions.intervention.resumed.v1"


class InterventionClosed(InterventionEvent):
    event_type: ClassVar[str] = "interventions.intervention.closed.v1"


class InterventionCancelled(InterventionEvent):
    event_type: ClassVar[str] = "interventions.intervention.cancelled.v1"


class InterventionArchived(InterventionEvent):
    event_type: ClassVar[str] = "interventions.intervention.archived.v1"


class InterventionUpdated(InterventionEvent):
    """Fields changed without a statut change (title, priority, dates, equipment, ...)."""

    event_type: ClassVar[str] = "interventions.intervention.updated.v1"


class InterventionLate(InterventionEvent):
    """Passed its `date_limite` while still open; emitted once per intervention and deadline."""

    event_type: ClassVar[str] = "interventions.intervention.late.v1"


class ChecklistMesure(EventPayload):
    """A `mesure` step with a `compteur_code` was filled: the value read on the equipment's meter of that
    code, for assets to record as a meter reading (source `manuel`). Not an intervention snapshot: the
    `interventions.intervention.*` consumers do not take it. Subject: the intervention id."""

    event_type: ClassVar[str] = "interventions.checklist.mesure.v1"
    intervention_id: int
    equipement_id: int
    etape_id: int
    compteur_code: str
    valeur: float
    unite: str | None = None
    hors_limites: bool
    horodatage: datetime
    user_id: int | None


# The intervention snapshots (docs/events/interventions-contract.md).
SNAPSHOT_EVENTS: tuple[type[InterventionEvent], ...] = (
    InterventionCreated,
    InterventionAssigned,
    InterventionUnassigned,
    InterventionStarted,
    InterventionPaused,
    InterventionResumed,
    InterventionClosed,
    InterventionCancelled,
    InterventionArchived,
    InterventionUpdated,
    InterventionLate,
)

# Everything interventions publishes: the snapshots and the checklist measures.
ALL_EVENTS: tuple[type[EventPayload], ...] = (*SNAPSHOT_EVENTS, ChecklistMesure)
