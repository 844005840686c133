"""Request and response bodies, and the facts read from the events this service consumes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from mif_notifications.models import CONTENU_MAX, LIEN_MAX, TITRE_MAX, TypeNotification

Id = Annotated[int, Field(gt=0, le=9_223_372_036_854_775_807)]
RoleName = Literal["admin", "responsable", "technicien", "client"]


# --- facts read from consumed events (unknown fields are ignored: payloads only gain fields) -----


class Fact(BaseModel):
    model_config = ConfigDict(extra="ignore")


class UserFact(Fact):
    """`auth.user.*.v1`."""

    user_id: Id
    username: str
    email: str
    full_name: str
    role: RoleName
    client_id: Id | None = None
    is_active: bool


class TechnicienFact(Fact):
    """`planning.technicien.*.v1`."""

    technicien_id: Id
    user_id: Id
    is_active: bool
    version: int


class InterventionFact(Fact):
    """`interventions.intervention.*.v1` (docs/events/interventions-contract.md)."""

    intervention_id: Id
    equipement_id: Id
    client_id: Id | None
    technicien_id: Id | None
    statut: str
    previous_statut: str | None = None
    type: str
    priorite: str
    urgence: bool
    titre: str
    actor_id: Id | None
    occurred_at: AwareDatetime


class PlanFact(Fact):
    """What every `planning.*` fact about a plan's occurrence says."""

    planning_id: Id
    equipement_id: Id
    equipement_nom: str | None = None
    technicien_id: Id | None = None
    due_at: AwareDatetime
    occurred_at: AwareDatetime


class OccurrenceFact(PlanFact):
    """`planning.occurrence.reminder.v1`."""

    occurrence_key: str
    lead_minutes: int | None = None


class OverdueFact(PlanFact):
    """`planning.plan.overdue.v1`."""

    occurrence_key: str
    intervention_id: Id | None = None


class RegleFact(Fact):
    """What a meter rule saw (`regle` of `planning.occurrence.due.v1`)."""

    declencheur: str
    compteur_code: str
    unite: str
    valeur: float
    seuil: float
    operateur: str | None = None
    debut_episode: AwareDatetime | None = None


class DueFact(PlanFact):
    """`planning.occurrence.due.v1`: only a `corrective` one (a seuil or variation rule triggered)
    notifies; the optional fields are absent on calendar and usage occurrences."""

    occurrence_key: str
    type: str | None = None
    priorite: str | None = None
    titre: str | None = None
    regle: RegleFact | None = None


class SuspendedFact(PlanFact):
    """`planning.plan.suspended.v1`."""

    frequence: str
    generated_last_hour: int
    max_per_hour: int
    reason: str


class DocumentFact(Fact):
    """`documents.document.uploaded.v1`."""

    document_id: Id
    intervention_id: Id
    filename: str
    mime: str | None = None
    taille: int | None = None
    categorie: str | None = None
    uploaded_by: Id | None = None
    client_id: Id | None = None
    technicien_id: Id | None = None
    occurred_at: AwareDatetime


class SignInFailuresFact(Fact):
    """`auth.sign_in_attempts.failed.v1`: someone is guessing the password of `user_id`."""

    user_id: Id
    failures: int = Field(ge=1)
    addresses: int = Field(ge=1)
    window_seconds: int = Field(ge=1)
    since: AwareDatetime
    occurred_at: AwareDatetime


class StockLowFact(Fact):
    """`inventory.stock.low.v1`: a part's available stock (on hand − reserved, all locations) fell to or
    below its minimum; inventory publishes it once per crossing. Quantities are decimals in `unite`."""

    piece_id: Id
    reference: str
    nom: str
    unite: str
    disponible: Decimal
    stock_minimum: Decimal
    stock_maximum: Decimal | None = None
    a_commander: Decimal = Field(description="What brings it back to the maximum (to the minimum without one).")
    occurred_at: AwareDatetime


# A path inside the application: it becomes an e-mail link under `app_url`, so never a URL of its own
# (`https://...`, `//host/...`) that would send users elsewhere.
CheminApp = Annotated[str, StringConstraints(pattern=r"^/([^/\\\s]\S*)?$", max_length=LIEN_MAX)]


class ExportFact(Fact):
    """What both `reports.export.*.v1` say: whose export job of what ended; `chemin` is the job's page
    (the file's signed link expires, so it is not in the event)."""

    job_id: Id
    user_id: Id
    type: str
    format: str
    chemin: CheminApp
    occurred_at: AwareDatetime


class ExportCompletedFact(ExportFact):
    """`reports.export.completed.v1`: the file can be downloaded until `expire_le`."""

    nom_fichier: str
    lignes: int = Field(ge=0)
    taille: int | None = None
    expire_le: AwareDatetime


class ExportFailedFact(ExportFact):
    """`reports.export.failed.v1`: `erreur` is a sentence for the requester."""

    erreur: str


# --- HTTP bodies --------------------------------------------------------------------------------


class LivraisonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    canal: str
    statut: str
    tentatives: int = Field(validation_alias="attempts")
    derniere_erreur: str | None = Field(validation_alias="last_error")
    prochaine_tentative: datetime | None = Field(validation_alias="next_attempt_at")
    date_envoi: datetime | None = Field(validation_alias="sent_at")

    @model_validator(mode="after")
    def _no_next_attempt_once_done(self) -> LivraisonOut:
        if self.statut != "pending":
            self.prochaine_tentative = None
        return self


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    type: str
    canal: str | None
    titre: str
    contenu: str
    intervention_id: int | None
    lue: bool
    date_lecture: datetime | None
    date_envoi: datetime
    livraisons: list[LivraisonOut]


class UnreadCount(BaseModel):
    count: int


class ReadAllOut(BaseModel):
    updated: int


Titre = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITRE_MAX)]
Contenu = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=CONTENU_MAX)]


class ManualNotification(BaseModel):
    """A manager's message to one user (`user_id`) or to every active user of a role (`role`)."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id | None = None
    role: RoleName | None = None
    titre: Titre
    contenu: Contenu
    type: TypeNotification = TypeNotification.information
    intervention_id: Id | None = None


class PreferencesOut(BaseModel):
    """Channels the caller receives notifications on; in-app is always on."""

    in_app: Literal[True] = True
    email: bool
    log: bool
    sms: bool
    push: bool


class PreferencesUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool | None = None
    log: bool | None = None
    sms: bool | None = None
    push: bool | None = None
