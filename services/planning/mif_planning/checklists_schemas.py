"""Request and response bodies of checklist templates (`/api/v1/planning/checklists`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from mif_common.bodies import Line200, OptBlock1000, Strict, blank_to_none, single_line
from mif_planning.models import TypeEtape

Line255 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(single_line)
]
Unite = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), AfterValidator(single_line)
]
CompteurCode = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,49}$")]
Borne = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]


class EtapeIn(Strict):
    """One step of a template; steps are numbered in the order sent (`ordre` 1..n)."""

    type: TypeEtape
    libelle: Line255
    obligatoire: bool = True
    unite: Annotated[Unite | None, BeforeValidator(blank_to_none)] = Field(
        default=None, description="`mesure` only: the unit (°C, bar, mm/s...)."
    )
    min: Borne | None = Field(default=None, description="`mesure` only: the lowest value within bounds.")
    max: Borne | None = Field(default=None, description="`mesure` only: the highest value within bounds.")
    compteur_code: CompteurCode | None = Field(
        default=None,
        description="`mesure` only: the code of the equipment's meter the measure feeds (e.g. `temperature`).",
    )

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> EtapeIn:
        if self.type is not TypeEtape.mesure:
            extra = [f for f in ("unite", "min", "max", "compteur_code") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only a 'mesure' step has a unit, bounds or a meter")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class ChecklistIn(Strict):
    """A template, whole (PUT replaces it, steps included)."""

    nom: Line200
    description: OptBlock1000 = None
    etapes: list[EtapeIn] = Field(min_length=1, max_length=100, description="In order: the first is step 1.")


class EtapeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ordre: int
    type: TypeEtape
    libelle: str
    obligatoire: bool
    unite: str | None
    min: float | None
    max: float | None
    compteur_code: str | None


class ChecklistOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    nom: str
    description: str | None
    etapes: list[EtapeOut]
    version: int
    date_creation: datetime
    date_modification: datetime
