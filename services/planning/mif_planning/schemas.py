"""Request and response bodies of the planning service (French field names: DOMAIN.md §3, §8)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mif_common.bodies import (
    Line100,
    OptBlock1000,
    OptLine100,
    RefId,
    Strict,
    refuse_null,
)
from mif_common.datetimes import DateTimeIn
from mif_common.frequences import JOURS, Frequence, FrequenceIn
from mif_planning.models import (
    ActionHistorique,
    Declencheur,
    Disponibilite,
    Niveau,
    Operateur,
    Priorite,
    StatutPlan,
)
from mif_planning.regles_schemas import RuleFields, check_kind_fields


def as_utc(value: datetime | date) -> datetime:
    """A date means midnight UTC; a naive time is read as UTC; sub-second precision is dropped so that
    occurrence keys stay readable and stable."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


# A date alone ("2026-03-01") is accepted by `datetime` itself (midnight, then read as UTC); years
# 1900-2999 (mif_common.datetimes: a date near year 9999 would overflow once moved to UTC or by a period).
DateIn = Annotated[
    DateTimeIn,
    AfterValidator(as_utc),
    Field(description="ISO 8601; a date alone means midnight UTC, a time without offset is UTC."),
]


# --- competences --------------------------------------------------------------------------------


class CompetenceCreate(Strict):
    nom: Line100
    domaine: OptLine100 = None
    description: OptBlock1000 = None


class CompetenceUpdate(Strict):
    """Partial update: only the fields sent change; `domaine` and `description` are cleared with null."""

    nom: Line100 | None = None
    domaine: OptLine100 = None
    description: OptBlock1000 = None

    _not_null = field_validator("nom")(refuse_null)


class CompetenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    nom: str
    domaine: str | None
    description: str | None
    date_creation: datetime
    date_modification: datetime


# --- techniciens --------------------------------------------------------------------------------


class CompetenceAttribuee(Strict):
    id: RefId = Field(description="A competence id.")
    niveau: Niveau = Niveau.intermediaire


def _distinct_competences(
    ids: list[int] | None, competences: list[CompetenceAttribuee] | None
) -> list[CompetenceAttribuee] | None:
    if ids is not None and competences is not None:
        raise ValueError("send either competences_ids or competences, not both")
    chosen = [CompetenceAttribuee(id=i) for i in ids] if ids is not None else competences
    if chosen is not None and len({c.id for c in chosen}) != len(chosen):
        raise ValueError("a competence may appear only once")
    return chosen


class TechnicienCreate(Strict):
    user_id: RefId = Field(description="An active auth user whose role is `technicien`.")
    equipe: OptLine100 = None
    zone: OptLine100 = None
    disponibilite: Disponibilite = Disponibilite.disponible
    competences_ids: list[RefId] | None = Field(
        default=None, max_length=100, description="Competences at level `intermediaire`."
    )
    competences: list[CompetenceAttribuee] | None = Field(
        default=None, max_length=100, description="Competences with their level (instead of competences_ids)."
    )

    @model_validator(mode="after")
    def _one_competence_list(self) -> TechnicienCreate:
        _distinct_competences(self.competences_ids, self.competences)
        return self

    def attributions(self) -> list[CompetenceAttribuee]:
        return _distinct_competences(self.competences_ids, self.competences) or []


class TechnicienUpdate(Strict):
    """Partial update. A technician may send only `disponibilite`, on its own profile. A competence list
    replaces the current one."""

    equipe: OptLine100 = None
    zone: OptLine100 = None
    disponibilite: Disponibilite | None = None
    competences_ids: list[RefId] | None = Field(default=None, max_length=100)
    competences: list[CompetenceAttribuee] | None = Field(default=None, max_length=100)
    is_active: bool | None = Field(default=None, description="true reactivates a deleted profile.")

    _not_null = field_validator("disponibilite", "is_active")(refuse_null)

    @model_validator(mode="after")
    def _one_competence_list(self) -> TechnicienUpdate:
        _distinct_competences(self.competences_ids, self.competences)
        return self

    def attributions(self) -> list[CompetenceAttribuee] | None:
        return _distinct_competences(self.competences_ids, self.competences)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(validation_alias="user_id")
    username: str
    email: str
    full_name: str
    is_active: bool


class CompetenceNiveauOut(BaseModel):
    id: int
    nom: str
    domaine: str | None
    niveau: Niveau


class TechnicienOut(BaseModel):
    id: int
    user_id: int
    user: UserOut
    equipe: str | None
    zone: str | None
    disponibilite: Disponibilite
    competences: list[CompetenceNiveauOut]
    is_active: bool
    charge_travail: int = Field(description="Open interventions assigned to this technician.")
    version: int
    date_creation: datetime
    date_modification: datetime


class RecommandationOut(BaseModel):
    rang: int = Field(description="1 is the best match.")
    technicien: TechnicienOut
    competence: CompetenceOut | None = Field(
        default=None,
        description="The competence technicians were ranked by: the one asked for, else the one whose name or "
        "domain is the equipment's type; none when neither exists.",
    )
    niveau: Niveau | None = Field(description="The technician's level in that competence, if any.")
    charge_travail: int
    interventions_sur_equipement: int = Field(description="Interventions of this technician on the equipment.")


class IcalFeedOut(BaseModel):
    technicien_id: int
    actif: bool = Field(description="Whether a feed URL exists (its secret is shown only when issued).")
    created_at: datetime | None


class IcalTokenOut(BaseModel):
    technicien_id: int
    token: str = Field(description="The secret; shown once. Issuing a new one revokes the previous URL.")
    path: str
    url: str = Field(description="Subscribe to this URL in a calendar application (no login needed).")
    created_at: datetime


# --- plans --------------------------------------------------------------------------------------


class PlanCreate(RuleFields):
    equipement_id: RefId
    declencheur: Declencheur = Field(
        default=Declencheur.calendrier,
        description="calendrier (frequence), usage (every `intervalle` of a counter), seuil (a value beyond a "
        "threshold for a duration), variation (a rate per hour beyond a threshold): docs/planning.md.",
    )
    frequence: FrequenceIn | None = Field(default=None, description="calendrier: required.")
    prochaine_date: DateIn | None = Field(
        default=None, description="calendrier: the first due date; default: one interval from now."
    )
    statut: Literal[StatutPlan.actif, StatutPlan.suspendu] = StatutPlan.actif
    commentaire: OptBlock1000 = None
    technicien_id: RefId | None = Field(default=None, description="Default assignee: an active technician.")
    checklist_id: RefId | None = Field(
        default=None, description="A checklist template copied onto every intervention the plan generates."
    )

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> PlanCreate:
        check_kind_fields(self.declencheur, self.model_dump(exclude_unset=True), creating=True)
        return self


class PlanUpdate(RuleFields):
    """Partial update: only the fields sent change; `commentaire` and `technicien_id` are cleared with
    null. To re-date an occurrence (the old date becoming `derniere_date`), use PATCH .../dates. A plan's
    kind and meter do not change; its other fields must be those of its kind."""

    equipement_id: RefId | None = None
    frequence: FrequenceIn | None = None
    prochaine_date: DateIn | None = None
    statut: StatutPlan | None = None
    commentaire: OptBlock1000 = None
    technicien_id: RefId | None = None
    checklist_id: RefId | None = Field(default=None, description="A checklist template; null detaches it.")

    _not_null = field_validator(
        "equipement_id",
        "frequence",
        "prochaine_date",
        "statut",
        "compteur_id",
        "intervalle",
        "operateur",
        "seuil",
        "duree_minutes",
        "priorite",
    )(refuse_null)


class EquipementEmbed(BaseModel):
    id: int
    nom: str


class TechnicienEmbed(BaseModel):
    id: int
    full_name: str
    is_active: bool


class CompteurEmbed(BaseModel):
    id: int
    code: str
    nom: str
    nature: str
    unite: str


class PlanOut(BaseModel):
    id: int
    equipement_id: int
    equipement: EquipementEmbed | None
    declencheur: Declencheur
    frequence: Frequence | None = Field(description="calendrier plans; null for the other kinds.")
    frequence_jours: int | None
    prochaine_date: datetime | None = Field(description="calendrier plans: the next due date; null otherwise.")
    prochaine_date_estimee: datetime | None = Field(
        default=None,
        description="usage plans: when the counter should reach `prochain_seuil`, from a least-squares fit of its "
        "recent usage (null: fewer than 2 readings, or a usage that does not grow).",
    )
    derniere_date: datetime | None
    compteur_id: int | None = None
    compteur: CompteurEmbed | None = None
    intervalle: float | None = None
    prochain_seuil: float | None = Field(default=None, description="usage: the accumulated usage of the next crossing.")
    usage_actuel: float | None = Field(default=None, description="usage: the counter's accumulated usage, if known.")
    operateur: Operateur | None = None
    seuil: float | None = None
    duree_minutes: int | None = None
    priorite: Priorite | None = None
    titre: str | None = None
    episode_en_cours: bool | None = Field(
        default=None, description="seuil, variation: an episode triggered and has not yet returned to normal."
    )
    statut: StatutPlan
    commentaire: str | None
    technicien_id: int | None
    technicien: TechnicienEmbed | None
    checklist_id: int | None = Field(default=None, description="Its checklist template, if any.")
    date_creation: datetime
    date_modification: datetime

    @staticmethod
    def jours(frequence: str | None) -> int | None:
        return JOURS[Frequence(frequence)] if frequence is not None else None


class PlanHistoriqueOut(BaseModel):
    """One row of a plan's history (docs/planning.md, "History")."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    planning_id: int
    action: ActionHistorique
    detail: dict[str, Any] = Field(
        description="creation, suppression: the plan's fields; modification: `avant` and `apres` of the fields "
        "changed; redatation: `avant`, `apres`; occurrences_sautees: `nombre` and `due_at` + `occurrence_key` "
        "(one occurrence) or `premiere` + `derniere` (a summary), `remplacees_par` (the occurrence generated "
        "instead); suspension_automatique: `raison`, `generees_derniere_heure`, `limite_par_heure`."
    )
    user_id: int | None = Field(description="Who did it; null for the scheduler.")
    horodatage: datetime


class CalendrierEntree(BaseModel):
    """One entry of a schedule: a plan occurrence or an intervention assigned to a technician."""

    uid: str = Field(description="Stable identifier (also the iCalendar UID).")
    type: Literal["occurrence", "intervention"]
    titre: str
    debut: datetime
    fin: datetime
    statut: str = Field(
        description=(
            "occurrence: prevue (to come), estimee (a usage plan's next crossing, at its forecast date),"
            " generee (emitted), realisee (its intervention closed), annulee (its"
            " intervention cancelled), en_retard (overdue); intervention: its statut."
        )
    )
    technicien_id: int | None
    equipement_id: int
    equipement_nom: str | None
    planning_id: int | None
    occurrence_key: str | None
    intervention_id: int | None
    priorite: str | None


# --- consumed: other services' events -----------------------------------------------------------


class UserFact(BaseModel):
    """`data` of `auth.user.*.v1` (services/auth/mif_auth/events.py); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    user_id: RefId
    username: str = Field(max_length=50)
    email: str = Field(max_length=254)
    full_name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    is_active: bool
    token_version: int


class EquipementFact(BaseModel):
    """`data` of `assets.equipement.*.v1` (docs/events/assets.md)."""

    model_config = ConfigDict(extra="ignore")

    equipement_id: RefId
    nom: str = Field(max_length=200)
    type: str | None = Field(default=None, max_length=100)
    statut: str = Field(max_length=20)
    client_id: int | None = None
    version: int
    updated_at: AwareDatetime


class InterventionFact(BaseModel):
    """`data` of `interventions.intervention.<verb>.v1` (docs/events/interventions-contract.md), plus
    the optional `planning_id` / `occurrence_key` of a preventive intervention generated from a plan."""

    model_config = ConfigDict(extra="ignore")

    intervention_id: RefId
    equipement_id: RefId
    technicien_id: int | None = None
    statut: str = Field(max_length=20)
    type: str = Field(max_length=30)
    priorite: str = Field(max_length=30)
    titre: str = Field(default="", max_length=255)
    actor_id: int | None = None
    date_limite: AwareDatetime | None = None
    planning_id: int | None = None
    occurrence_key: str | None = Field(default=None, max_length=100)
    occurred_at: AwareDatetime
