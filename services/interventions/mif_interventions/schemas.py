"""Request and response bodies of the interventions service (French field names: DOMAIN.md §3, §8),
and the `data` of the events it consumes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from mif_common.bodies import RefId, Strict, blank_to_none, refuse_null, single_line, text_block
from mif_common.datetimes import AwareDateTimeIn
from mif_interventions.models import (
    ActionHistorique,
    Priorite,
    Statut,
    TypeEtape,
    TypeIntervention,
    canonical_priorite,
)

Titre = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(single_line)
]
Texte = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000), AfterValidator(text_block)
]
Remarque = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000), AfterValidator(text_block)
]
OptTexte = Annotated[Texte | None, BeforeValidator(blank_to_none)]
OptRemarque = Annotated[Remarque | None, BeforeValidator(blank_to_none)]
Minutes = Annotated[int, Field(ge=0, le=10_000_000, description="Minutes.")]
Centimes = Annotated[int, Field(ge=0, le=10**15, description="Integer centimes (MAD).")]
PrioriteIn = Annotated[
    Priorite,
    BeforeValidator(canonical_priorite),
    Field(description="Also accepts the English words high, medium, low, urgent; answered canonically."),
]


class InterventionCreate(Strict):
    titre: Titre
    description: OptTexte = None
    type: TypeIntervention
    priorite: PrioriteIn = Priorite.normale
    urgence: bool = Field(default=False, description="true forces priorite 'urgente'.")
    date_limite: AwareDateTimeIn | None = Field(
        default=None, description="Deadline (with a time zone); defaults from the priority's SLA."
    )
    technicien_id: RefId | None = Field(
        default=None, description="An active technician: the intervention is 'affectee'."
    )
    equipement_id: RefId
    duree_estimee: Minutes | None = None
    cout_estime: Centimes | None = None
    statut: Statut | None = Field(
        default=None,
        description="Accepted only when it is what creation gives anyway ('ouverte', or 'affectee' with a technician).",
    )


class InterventionUpdate(Strict):
    """Partial update of fields (not the statut: use the actions): only the fields sent change;
    optional ones are cleared with null."""

    titre: Titre | None = None
    description: OptTexte = None
    type: TypeIntervention | None = None
    priorite: PrioriteIn | None = None
    urgence: bool | None = None
    date_limite: AwareDateTimeIn | None = None
    equipement_id: RefId | None = None
    duree_estimee: Minutes | None = None
    duree_reelle: Minutes | None = None
    cout_estime: Centimes | None = None
    cout_reel: Centimes | None = None
    rapport: OptTexte = None

    _not_null = field_validator("titre", "type", "priorite", "urgence", "equipement_id")(refuse_null)


class ActionBody(Strict):
    remarque: OptRemarque = Field(default=None, description="Why (required to pause and to cancel).")


class AffecterBody(ActionBody):
    technicien_id: RefId | None = Field(
        default=None, description="Who to assign; without it, the technician planning recommends."
    )


class CloturerBody(ActionBody):
    rapport: OptTexte = None
    duree_reelle: Minutes | None = Field(default=None, description="Minutes; defaults to the time since work started.")
    cout_reel: Centimes | None = None


class CommentaireCreate(Strict):
    contenu: Remarque


class Personne(BaseModel):
    id: int
    full_name: str | None


class EquipementBref(BaseModel):
    id: int
    nom: str | None


class InterventionOut(BaseModel):
    id: int
    titre: str
    description: str | None
    type: TypeIntervention
    statut: Statut
    priorite: Priorite
    urgence: bool
    equipement_id: int
    client_id: int | None
    technicien_id: int | None
    date_creation: datetime
    date_modification: datetime
    date_limite: datetime | None
    date_affectation: datetime | None
    date_debut_travaux: datetime | None
    date_fin_travaux: datetime | None
    date_cloture: datetime | None
    date_archivage: datetime | None
    duree_estimee: int | None
    duree_reelle: int | None
    cout_estime: int | None
    cout_reel: int | None = Field(
        description="Centimes (MAD): the real cost a user gave (PATCH, closing) when there is one; otherwise "
        "`cout_pieces`, the parts being the only real cost known; null when neither is known."
    )
    cout_pieces: int | None = Field(
        description="Centimes (MAD): the parts consumed on the intervention net of returns, as inventory costs "
        "them (quantity × unit price at consumption); null until inventory reports any. Read-only."
    )
    rapport: str | None
    created_by: int | None
    planning_id: int | None
    version: int
    en_retard: bool = Field(description="Past date_limite and not closed, cancelled or archived.")
    technicien: Personne | None
    equipement: EquipementBref


class HistoriqueOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    intervention_id: int
    action: ActionHistorique
    statut: Statut
    ancien_statut: Statut | None
    remarque: str | None
    avant: dict[str, Any] | None
    apres: dict[str, Any] | None
    user_id: int | None
    ip: str | None = Field(description="Shown to managers only.")
    user_agent: str | None = Field(description="Shown to managers only.")
    horodatage: datetime


class CommentaireOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    intervention_id: int
    user_id: int
    contenu: str
    date_creation: datetime


# --- checklists ---------------------------------------------------------------------------------


class ChecklistAjout(Strict):
    checklist_id: RefId = Field(description="A planning checklist template (GET /api/v1/planning/checklists).")


class EtapeRemplie(Strict):
    """What fills a step: exactly the field of its type (`verification`: `fait`; `mesure`: `valeur`;
    `texte`: `texte`; `photo`: `document_id`, a document attached to this intervention)."""

    fait: bool | None = None
    valeur: Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)] | None = None
    texte: Remarque | None = None
    document_id: RefId | None = None


class EtapeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    intervention_id: int
    checklist_id: int | None = Field(description="The template it was copied from.")
    checklist_nom: str | None
    ordre: int
    type: TypeEtape
    libelle: str
    obligatoire: bool
    unite: str | None
    min: float | None
    max: float | None
    compteur_code: str | None = Field(description="`mesure`: the equipment's meter the value feeds.")
    fait: bool | None
    valeur_mesure: float | None
    texte: str | None
    document_id: int | None
    hors_limites: bool = Field(description="`mesure`: the value lies outside [min, max].")
    rempli: bool = Field(description="Done: answered (a `verification` only when `fait` is true).")
    rempli_par: int | None
    rempli_le: datetime | None


# --- consumed events -----------------------------------------------------------------------------


class EquipementFact(BaseModel):
    """`data` of `assets.equipement.*.v1` (docs/events/assets.md); other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    equipement_id: RefId
    nom: str = Field(max_length=200)
    statut: str = Field(max_length=20)
    client_id: int | None = None
    version: int = Field(ge=0)
    updated_at: AwareDatetime


class TechnicienFact(BaseModel):
    """`data` of `planning.technicien.*.v1` (docs/events/planning-contract.md)."""

    model_config = ConfigDict(extra="ignore")

    technicien_id: RefId
    user_id: RefId
    full_name: str = Field(max_length=200)
    is_active: bool
    version: int = Field(ge=0)


class EtapeFact(BaseModel):
    """One step of a planning checklist template, as its events carry it."""

    model_config = ConfigDict(extra="ignore")

    ordre: int = Field(ge=1, le=10_000)
    type: TypeEtape
    libelle: str = Field(max_length=255)
    obligatoire: bool
    unite: str | None = Field(default=None, max_length=20)
    min: float | None = None
    max: float | None = None
    compteur_code: str | None = Field(default=None, max_length=50)


class ChecklistSnapshotFact(BaseModel):
    """The optional `checklist` of `planning.occurrence.due.v1`: the plan's template."""

    model_config = ConfigDict(extra="ignore")

    id: RefId
    nom: str = Field(max_length=200)
    etapes: list[EtapeFact] = Field(max_length=1000)


class ChecklistFact(BaseModel):
    """`data` of `planning.checklist.*.v1` (docs/events/planning-contract.md)."""

    model_config = ConfigDict(extra="ignore")

    checklist_id: RefId
    nom: str = Field(max_length=200)
    etapes: list[EtapeFact] = Field(max_length=1000)
    version: int = Field(ge=1, le=2**31 - 1)


class OccurrenceFact(BaseModel):
    """`data` of `planning.occurrence.due.v1`. A meter rule's occurrence may say what to create (optional
    within v1, docs/events/planning-contract.md): its `type` (absent: preventive; a seuil or variation
    rule: corrective), `priorite` (absent: normale) and `titre` (absent: the preventive title)."""

    model_config = ConfigDict(extra="ignore")

    occurrence_key: str = Field(min_length=1, max_length=200)
    planning_id: RefId
    equipement_id: RefId
    equipement_nom: str | None = None
    technicien_id: RefId | None = None
    due_at: AwareDatetime
    frequence: str | None = None
    commentaire: str | None = None
    type: TypeIntervention | None = None
    priorite: Priorite | None = None
    titre: str | None = Field(default=None, max_length=255)
    checklist: ChecklistSnapshotFact | None = None  # optional within v1: the plan's template


class UserFact(BaseModel):
    """`data` of `auth.user.*.v1` (services/auth/mif_auth/events.py)."""

    model_config = ConfigDict(extra="ignore")

    user_id: RefId
    role: str = Field(max_length=20)
    client_id: int | None = None
    is_active: bool


class DocumentFact(BaseModel):
    """`data` of `documents.document.uploaded.v1` and `.deleted.v1`
    (services/documents/mif_documents/events.py); other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    document_id: RefId
    intervention_id: RefId
    filename: str | None = Field(default=None, max_length=500)
    categorie: str | None = None
    uploaded_by: int | None = None
    deleted_by: int | None = None


class PartsCostLine(BaseModel):
    """One part of `PartsCostFact.lignes`: what was consumed net of returns, and its cost."""

    model_config = ConfigDict(extra="ignore")

    piece_id: RefId
    reference: str
    nom: str
    unite: str
    quantite: Decimal
    cout: int


class PartsCostFact(BaseModel):
    """`data` of `inventory.intervention.parts_costed.v1`: the parts cost of an intervention changed (a
    consumption or a return). `version` grows by one per change of that intervention's cost; the highest
    one seen wins. Other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    intervention_id: RefId
    cout_pieces: int = Field(ge=0, le=10**15, description="Centimes (MAD), net of returns.")
    lignes: list[PartsCostLine] = Field(default_factory=list)
    version: int = Field(ge=1, le=2**31 - 1)  # stored in an INTEGER column
    actor_id: RefId | None = None
    occurred_at: AwareDatetime
