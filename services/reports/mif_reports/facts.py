"""What the reports service keeps from the events it consumes (`data` of each; unknown fields ignored).

A `data` that does not match fails validation and goes to the dead-letter queue at once (the consumer
wrapper), nothing written.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mif_common.bodies import RefId


class _Fact(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InterventionFact(_Fact):
    """`interventions.intervention.<verb>.v1`: the intervention's snapshot after the fact."""

    intervention_id: RefId
    equipement_id: RefId
    client_id: RefId | None = None
    technicien_id: RefId | None = None
    statut: str = Field(max_length=20)
    type: str = Field(max_length=20)
    priorite: str = Field(max_length=20)
    titre: str = Field(max_length=255)
    planning_id: RefId | None = None
    occurred_at: AwareDatetime
    # Optional within v1: a publisher that does not send them leaves them unknown (the KPIs that need
    # them skip the intervention: never a guessed date).
    date_creation: AwareDatetime | None = None
    date_limite: AwareDatetime | None = None
    date_debut_travaux: AwareDatetime | None = None
    date_cloture: AwareDatetime | None = None
    duree_reelle: int | None = Field(default=None, ge=0)


class LigneCoutFact(_Fact):
    piece_id: RefId
    reference: str = Field(max_length=100)
    nom: str = Field(max_length=255)
    unite: str = Field(max_length=20)
    quantite: float
    cout: int


class PartsCostedFact(_Fact):
    """`inventory.intervention.parts_costed.v1`: the highest `version` wins."""

    intervention_id: RefId
    cout_pieces: int
    lignes: list[LigneCoutFact] = Field(default_factory=list, max_length=10_000)
    version: int = Field(ge=0)


class EquipementFact(_Fact):
    """`assets.equipement.*.v1`: the equipment's snapshot; `status_changed` also says from what."""

    equipement_id: RefId
    nom: str = Field(max_length=255)
    type: str = Field(max_length=100)
    localisation: str = Field(max_length=255)
    numero_serie: str | None = Field(default=None, max_length=100)
    statut: str = Field(max_length=20)
    criticite: str = Field(max_length=20)
    client_id: RefId | None = None
    version: int = Field(ge=0)
    updated_at: AwareDatetime
    ancien_statut: str | None = Field(default=None, max_length=20)


class ClientFact(_Fact):
    client_id: RefId
    nom_entreprise: str = Field(max_length=255)
    ville: str | None = Field(default=None, max_length=100)
    is_active: bool
    version: int = Field(ge=0)


class TechnicienFact(_Fact):
    technicien_id: RefId
    user_id: RefId
    full_name: str = Field(max_length=255)
    is_active: bool
    version: int = Field(ge=0)


class PieceFact(_Fact):
    piece_id: RefId
    reference: str = Field(max_length=100)
    nom: str = Field(max_length=255)
    categorie: str | None = Field(default=None, max_length=100)
    unite: str = Field(max_length=20)
    prix_unitaire: int
    stock_minimum: float
    stock_maximum: float | None = None
    version: int = Field(ge=0)


class StockMovedFact(_Fact):
    mouvement_id: RefId
    piece_id: RefId
    disponible_total: float
    occurred_at: datetime
