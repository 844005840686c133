"""Request and response bodies of the assets service (French field names: DOMAIN.md §3, §8)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from mif_assets.models import Criticite, NiveauService, SourceStatut, StatutEquipement, TypeClient
from mif_common.bodies import (
    Line100,
    Line200,
    OptBlock500,
    OptLine100,
    OptLine200,
    RefId,
    Strict,
    blank_to_none,
    refuse_null,
)
from mif_common.frequences import JoursOuFrequence

Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=6, max_length=30, pattern=r"^\+?[0-9 ().-]+$")
]
OptPhone = Annotated[Phone | None, BeforeValidator(blank_to_none)]
OptEmail = Annotated[EmailStr | None, BeforeValidator(blank_to_none)]
FrequenceJours = Annotated[
    int,
    JoursOuFrequence(ge=1, le=3650),
    Field(
        description="Maintenance interval in days (1 to 3650), or a frequency word (mensuel, monthly, ...) "
        "converted into its days. Answers give the number of days."
    ),
]
# An empty form field means "no interval", as for the other optional fields.
OptFrequenceJours = Annotated[FrequenceJours | None, BeforeValidator(blank_to_none)]


# --- clients ------------------------------------------------------------------------------------


class ClientCreate(Strict):
    nom_entreprise: Line200
    type_client: TypeClient = TypeClient.entreprise
    secteur_activite: OptLine100 = None
    nom_contact: OptLine200 = None
    email: OptEmail = None
    telephone: OptPhone = None
    adresse: OptBlock500 = None
    ville: OptLine100 = None
    pays: Line100 = "Maroc"
    niveau_service: NiveauService = NiveauService.standard
    contrat_debut: date | None = None
    contrat_fin: date | None = Field(default=None, description="Must be after contrat_debut.")
    type_contrat: OptLine100 = None


class ClientUpdate(Strict):
    """Partial update: only the fields sent change; optional fields are cleared with null."""

    nom_entreprise: Line200 | None = None
    type_client: TypeClient | None = None
    secteur_activite: OptLine100 = None
    nom_contact: OptLine200 = None
    email: OptEmail = None
    telephone: OptPhone = None
    adresse: OptBlock500 = None
    ville: OptLine100 = None
    pays: Line100 | None = None
    niveau_service: NiveauService | None = None
    is_active: bool | None = Field(default=None, description="true reactivates a deactivated client.")
    contrat_debut: date | None = None
    contrat_fin: date | None = None
    type_contrat: OptLine100 = None

    _not_null = field_validator("nom_entreprise", "type_client", "pays", "niveau_service", "is_active")(refuse_null)


class ClientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    nom_entreprise: str
    type_client: TypeClient
    secteur_activite: str | None
    nom_contact: str | None
    email: str | None
    telephone: str | None
    adresse: str | None
    ville: str | None
    pays: str
    niveau_service: NiveauService
    is_active: bool
    contrat_debut: date | None
    contrat_fin: date | None
    type_contrat: str | None
    date_creation: datetime
    date_modification: datetime


# --- equipements --------------------------------------------------------------------------------


class EquipementCreate(Strict):
    nom: Line200
    type: Line100 = Field(description='A free label, e.g. "compresseur".')
    localisation: Line200
    numero_serie: OptLine100 = None
    marque: OptLine100 = None
    modele: OptLine100 = None
    statut: StatutEquipement = StatutEquipement.operationnel
    criticite: Criticite = Criticite.standard
    client_id: RefId | None = Field(default=None, description="An active client organisation.")
    frequence_entretien: OptFrequenceJours = None
    date_mise_en_service: date | None = None
    date_fin_garantie: date | None = None


class EquipementUpdate(Strict):
    """Partial update: only the fields sent change; optional fields are cleared with null. A change of
    `statut` is recorded in the status history with `motif`."""

    nom: Line200 | None = None
    type: Line100 | None = None
    localisation: Line200 | None = None
    numero_serie: OptLine100 = None
    marque: OptLine100 = None
    modele: OptLine100 = None
    statut: StatutEquipement | None = None
    motif: OptBlock500 = Field(default=None, description="Why the statut changes (kept in the history).")
    criticite: Criticite | None = None
    client_id: RefId | None = None
    frequence_entretien: OptFrequenceJours = None
    date_mise_en_service: date | None = None
    date_fin_garantie: date | None = None

    _not_null = field_validator("nom", "type", "localisation", "statut", "criticite")(refuse_null)


class EquipementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    nom: str
    type: str
    localisation: str
    numero_serie: str | None
    marque: str | None
    modele: str | None
    statut: StatutEquipement
    criticite: Criticite
    client_id: int | None
    frequence_entretien: int | None
    date_mise_en_service: date | None
    date_fin_garantie: date | None
    date_creation: datetime
    date_modification: datetime


class StatutHistoriqueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    equipement_id: int
    ancien_statut: StatutEquipement | None
    nouveau_statut: StatutEquipement
    motif: str | None
    source: SourceStatut
    user_id: int | None
    event_id: str | None
    horodatage: datetime


# --- consumed: interventions events (docs/events/interventions-contract.md) ----------------------


class InterventionFact(BaseModel):
    """`data` of an `interventions.intervention.<verb>.v1` event; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    intervention_id: RefId
    equipement_id: RefId
    client_id: int | None = None
    technicien_id: int | None = None
    statut: str = Field(max_length=20)  # after the change
    previous_statut: str | None = None
    type: str = Field(max_length=30)
    priorite: str = Field(max_length=30)
    urgence: bool = False
    titre: str = ""
    actor_id: int | None = None
    occurred_at: AwareDatetime


class ChecklistMesureFact(BaseModel):
    """`data` of an `interventions.checklist.mesure.v1` event (docs/interventions.md, "Checklists"): a
    measure read on the equipment's meter `compteur_code`; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    intervention_id: RefId
    equipement_id: RefId
    etape_id: RefId
    compteur_code: str = Field(max_length=50)
    valeur: float = Field(allow_inf_nan=False, ge=-1e15, le=1e15)
    horodatage: AwareDatetime
    user_id: int | None = None
