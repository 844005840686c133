"""Request and response bodies of the inventory service (French field names, like the rest of the API),
and the facts it reads from other services' events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mif_common.bodies import (
    Line40,
    Line60,
    Line100,
    Line200,
    OptBlock500,
    OptBlock2000,
    OptLine100,
    RefId,
    Strict,
    refuse_null,
)
from mif_inventory.models import TypeEmplacement, TypeMouvement, Unite

Centimes = Annotated[int, Field(ge=0, le=10**12, description="Integer centimes (MAD).")]
QuantitePositive = Annotated[
    Decimal,
    Field(gt=0, max_digits=14, decimal_places=3, description="In the part's unit, to the thousandth; > 0."),
]
QuantiteOuZero = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=3, description="In the part's unit, to the thousandth; ≥ 0."),
]
TypesEquipement = Annotated[
    list[Line100],
    Field(max_length=50, description="Equipment types (assets' `type`, e.g. `compresseur`) the part fits."),
]
EquipementIds = Annotated[list[RefId], Field(max_length=200, description="Equipment ids the part fits.")]


# --- parts --------------------------------------------------------------------------------------


class PieceCreate(Strict):
    reference: Line60 = Field(description="Unique (case-insensitive) among the catalogue's parts.")
    nom: Line200
    description: OptBlock2000 = None
    categorie: OptLine100 = None
    fabricant: OptLine100 = None
    reference_fabricant: OptLine100 = None
    unite: Unite = Unite.piece
    prix_unitaire: Centimes = 0
    stock_minimum: QuantiteOuZero = Decimal(0)
    stock_maximum: QuantiteOuZero | None = None
    types_equipement: TypesEquipement = Field(default_factory=list)
    equipement_ids: EquipementIds = Field(default_factory=list)

    @model_validator(mode="after")
    def _maximum_above_minimum(self) -> PieceCreate:
        if self.stock_maximum is not None and self.stock_maximum < self.stock_minimum:
            raise ValueError("stock_maximum must be greater than or equal to stock_minimum")
        return self


class PieceUpdate(Strict):
    """A partial edit: omitted fields keep their value; optional ones may be set to null."""

    reference: Line60 | None = None
    nom: Line200 | None = None
    description: OptBlock2000 = None
    categorie: OptLine100 = None
    fabricant: OptLine100 = None
    reference_fabricant: OptLine100 = None
    unite: Unite | None = None
    prix_unitaire: Centimes | None = None
    stock_minimum: QuantiteOuZero | None = None
    stock_maximum: QuantiteOuZero | None = None
    types_equipement: TypesEquipement | None = None
    equipement_ids: EquipementIds | None = None

    _not_null = field_validator(
        "reference", "nom", "unite", "prix_unitaire", "stock_minimum", "types_equipement", "equipement_ids"
    )(refuse_null)


class PieceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    reference: str
    nom: str
    description: str | None
    categorie: str | None
    fabricant: str | None
    reference_fabricant: str | None
    unite: str
    prix_unitaire: int = Field(description="Integer centimes (MAD).")
    stock_minimum: float
    stock_maximum: float | None
    types_equipement: list[str]
    equipement_ids: list[int]
    en_alerte: bool = Field(description="Available stock is at or below `stock_minimum`.")
    version: int
    date_creation: datetime
    date_modification: datetime


class AReorder(BaseModel):
    """A part to reorder: available stock at or below its minimum."""

    piece_id: int
    reference: str
    nom: str
    unite: str
    fabricant: str | None
    reference_fabricant: str | None
    prix_unitaire: int
    stock_minimum: float
    stock_maximum: float | None
    en_stock: float = Field(description="On hand over every location.")
    reserve: float = Field(description="Reserved for interventions over every location.")
    disponible: float
    a_commander: float = Field(description="What brings available stock back to `stock_maximum` (or the minimum).")
    cout_estime: int = Field(description="`a_commander` × `prix_unitaire`, centimes (MAD).")


# --- locations ----------------------------------------------------------------------------------


class EmplacementCreate(Strict):
    code: Line40 = Field(description="Short unique code (case-insensitive), e.g. `MAG-CASA`.")
    nom: Line200
    type: TypeEmplacement
    technicien_id: RefId | None = Field(default=None, description="The technician whose van this is (vehicule).")
    adresse: OptBlock500 = None


class EmplacementUpdate(Strict):
    code: Line40 | None = None
    nom: Line200 | None = None
    technicien_id: RefId | None = None
    adresse: OptBlock500 = None
    is_active: bool | None = None

    _not_null = field_validator("code", "nom", "is_active")(refuse_null)


class EmplacementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    nom: str
    type: str
    technicien_id: int | None
    adresse: str | None
    is_active: bool
    version: int
    date_creation: datetime
    date_modification: datetime


# --- stock and movements ------------------------------------------------------------------------


class StockOut(BaseModel):
    """One part at one location."""

    piece_id: int
    reference: str
    nom: str
    unite: str
    emplacement_id: int
    emplacement_code: str
    quantite: float = Field(description="On hand.")
    reservee: float = Field(description="Reserved for interventions.")
    disponible: float = Field(description="On hand − reserved.")
    date_modification: datetime


class MouvementCreate(Strict):
    """A stock movement by a manager. `entree`, `sortie`, `retour`: `quantite` > 0 at `emplacement_id`;
    `ajustement`: `quantite` is the counted quantity the location now holds (an inventory count);
    `transfert`: from `emplacement_id` to `emplacement_destination_id`."""

    type: TypeMouvement
    piece_id: RefId
    emplacement_id: RefId
    quantite: QuantiteOuZero
    emplacement_destination_id: RefId | None = None
    motif: OptBlock500 = None

    @model_validator(mode="after")
    def _shape(self) -> MouvementCreate:
        if self.type is TypeMouvement.transfert:
            if self.emplacement_destination_id is None:
                raise ValueError("a transfert needs emplacement_destination_id")
            if self.emplacement_destination_id == self.emplacement_id:
                raise ValueError("a transfert goes to another location than emplacement_id")
        elif self.emplacement_destination_id is not None:
            raise ValueError("emplacement_destination_id is only for a transfert")
        if self.type is not TypeMouvement.ajustement and self.quantite == 0:
            raise ValueError("quantite must be greater than 0")
        if self.type is TypeMouvement.ajustement and self.motif is None:
            raise ValueError("an ajustement needs a motif (why the count differs)")
        return self


class MouvementOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    piece_id: int
    emplacement_id: int
    type: str
    quantite: float = Field(description="Signed: what the location's on-hand stock changed by.")
    avant: float
    apres: float
    emplacement_lie_id: int | None
    intervention_id: int | None
    prix_unitaire: int
    user_id: int | None
    motif: str | None
    date_mouvement: datetime


# --- parts on an intervention -------------------------------------------------------------------


class PiecesIntervention(Strict):
    """Reserve, consume, return or release `quantite` of a part from one location on an intervention."""

    piece_id: RefId
    emplacement_id: RefId
    quantite: QuantitePositive
    motif: OptBlock500 = None


class LignePieceOut(BaseModel):
    piece_id: int
    reference: str
    nom: str
    unite: str
    emplacement_id: int | None = None
    reservee: float | None = None
    consommee: float
    cout: int = Field(description="Consumed quantity × unit price at consumption, net of returns; centimes (MAD).")


class PiecesInterventionOut(BaseModel):
    """The parts of an intervention. A client user sees only the consumed parts, their quantities and
    costs (no locations, no reservations)."""

    intervention_id: int
    lignes: list[LignePieceOut]
    cout_pieces: int = Field(description="Total of the lines' `cout`, centimes (MAD).")


# --- facts of other services' events ------------------------------------------------------------


class InterventionFact(BaseModel):
    """What inventory keeps from `interventions.intervention.<verb>.v1` (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    intervention_id: RefId
    equipement_id: RefId | None = None
    client_id: RefId | None = None
    technicien_id: RefId | None = None
    statut: str = Field(max_length=20)
    occurred_at: AwareDatetime


class TechnicienFact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    technicien_id: RefId
    user_id: RefId
    version: int = Field(ge=0)


class EquipementFact(BaseModel):
    """`data` of `assets.equipement.*.v1`: only what compatible parts need."""

    model_config = ConfigDict(extra="ignore")

    equipement_id: RefId
    type: str = Field(max_length=100)
    updated_at: AwareDatetime
