"""Bodies of meters and their readings (docs/assets.md, "Meters and readings")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from mif_assets.models import NatureCompteur, SourceReleve
from mif_common.bodies import Strict, refuse_null, single_line
from mif_common.datetimes import DateTimeIn

# At most this many readings in one batch (HTTP body, or one MQTT flush).
MAX_RELEVES = 1000

Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[a-z0-9_]+$"),
    Field(description="Identifies the meter on its equipment (lower case, digits, `_`): the MQTT topic's last part."),
]
Nom = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(single_line)
]
Unite = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), AfterValidator(single_line)
]
Valeur = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-1e15, le=1e15)]


class CompteurCreate(Strict):
    code: Code
    nom: Nom | None = Field(default=None, description="Defaults to the code.")
    nature: NatureCompteur | None = Field(
        default=None, description="Defaults to `compteur` for heures_marche, cycles and km, else `jauge`."
    )
    unite: Unite


class CompteurUpdate(Strict):
    """Partial; `code` and `nature` stay (readings and plans rely on them)."""

    nom: Annotated[Nom | None, AfterValidator(refuse_null)] = None
    unite: Annotated[Unite | None, AfterValidator(refuse_null)] = None


class CompteurOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    equipement_id: int
    code: str
    nom: str
    nature: NatureCompteur
    unite: str
    version: int
    date_creation: datetime
    date_modification: datetime


class ReleveIn(Strict):
    horodatage: DateTimeIn = Field(description="ISO 8601; without an offset, UTC. At most 5 minutes ahead.")
    valeur: Valeur
    remise_a_zero: bool = Field(
        default=False, description="A counter that went back (replaced, reset): a lower value is accepted."
    )


class RelevesIn(Strict):
    releves: list[ReleveIn] = Field(min_length=1, max_length=MAX_RELEVES)
    source: Literal["api", "manuel"] = Field(default="api", description="`mqtt` is the ingestion worker's.")


class RelevesAccepted(BaseModel):
    acceptes: int = Field(description="New readings stored.")
    doublons: int = Field(description="Readings ignored: one was already stored for the meter and instant.")
    premier: datetime | None = Field(description="The earliest new reading's instant (null if none).")
    dernier: datetime | None = Field(description="The latest new reading's instant (null if none).")


class ReleveOut(BaseModel):
    horodatage: datetime
    valeur: float
    source: SourceReleve
    remise_a_zero: bool


class PasOut(BaseModel):
    """One bucket of the downsampled history: the readings of [debut, debut + pas)."""

    debut: datetime
    min: float
    moy: float
    max: float
    nombre: int
