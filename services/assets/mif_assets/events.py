"""Events the assets service publishes.

Every event carries a full snapshot of the entity plus `version` (bumped on each change) and
`updated_at`, so a consumer can upsert its replica from any of them and drop one older than what it
holds.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from mif_common.events import EventPayload


class ClientEvent(EventPayload):
    client_id: int
    nom_entreprise: str
    type_client: str
    niveau_service: str
    is_active: bool
    ville: str | None = None
    pays: str
    contrat_debut: date | None = None
    contrat_fin: date | None = None
    type_contrat: str | None = None
    version: int
    updated_at: datetime


class ClientCreated(ClientEvent):
    event_type: ClassVar[str] = "assets.client.created.v1"


class ClientUpdated(ClientEvent):
    """Any change but a deactivation (a reactivation is an update with `is_active` true)."""

    event_type: ClassVar[str] = "assets.client.updated.v1"
    changed: list[str] = Field(default_factory=list)


class ClientDeactivated(ClientEvent):
    event_type: ClassVar[str] = "assets.client.deactivated.v1"


class EquipementEvent(EventPayload):
    equipement_id: int
    nom: str
    type: str
    localisation: str
    numero_serie: str | None = None
    statut: str
    criticite: str
    client_id: int | None = None
    frequence_entretien: int | None = None
    version: int
    updated_at: datetime


class EquipementCreated(EquipementEvent):
    event_type: ClassVar[str] = "assets.equipement.created.v1"


class EquipementUpdated(EquipementEvent):
    """Fields other than `statut` changed (a statut change has its own event)."""

    event_type: ClassVar[str] = "assets.equipement.updated.v1"
    changed: list[str] = Field(default_factory=list)


class EquipementStatusChanged(EquipementEvent):
    event_type: ClassVar[str] = "assets.equipement.status_changed.v1"
    ancien_statut: str
    motif: str | None = None
    source: str  # "api" (a manager) or "event" (an intervention's side effect)
    user_id: int | None = None
    intervention_id: int | None = None


class EquipementRetired(EquipementEvent):
    """Set to `retire` (also announced by `status_changed`): out of service for good."""

    event_type: ClassVar[str] = "assets.equipement.retired.v1"
    ancien_statut: str
    motif: str | None = None


class EquipementDeleted(EquipementEvent):
    """Deleted for real; only possible while no intervention ever referenced it."""

    event_type: ClassVar[str] = "assets.equipement.deleted.v1"


class CompteurEvent(EventPayload):
    compteur_id: int
    equipement_id: int
    code: str
    nom: str
    nature: str  # "compteur" (only increases, but for a flagged reset) or "jauge"
    unite: str
    version: int
    updated_at: datetime


class CompteurCreated(CompteurEvent):
    event_type: ClassVar[str] = "assets.compteur.created.v1"


class CompteurUpdated(CompteurEvent):
    event_type: ClassVar[str] = "assets.compteur.updated.v1"


class CompteurDeleted(CompteurEvent):
    """Deleted with its readings (also when its equipment is deleted: no event then)."""

    event_type: ClassVar[str] = "assets.compteur.deleted.v1"


class ReleveRecorded(BaseModel):
    horodatage: datetime
    valeur: float
    remise_a_zero: bool


class RelevesRecorded(EventPayload):
    """One accepted batch of new readings of one meter (an HTTP batch or an MQTT flush); readings
    already stored for their instant are neither counted nor included."""

    event_type: ClassVar[str] = "assets.releves.recorded.v1"
    compteur_id: int
    equipement_id: int
    code: str
    nature: str
    unite: str
    source: str  # manuel | api | mqtt
    nombre: int
    premier: datetime
    dernier: datetime
    min: float
    max: float
    derniere_valeur: float  # the value at `dernier`
    remise_a_zero: bool  # the batch holds a counter reset
    releves: list[ReleveRecorded]  # sorted by horodatage, at most 1,000
    occurred_at: datetime


ALL_EVENTS = (
    ClientCreated,
    ClientUpdated,
    ClientDeactivated,
    EquipementCreated,
    EquipementUpdated,
    EquipementStatusChanged,
    EquipementRetired,
    EquipementDeleted,
    CompteurCreated,
    CompteurUpdated,
    CompteurDeleted,
    RelevesRecorded,
)
