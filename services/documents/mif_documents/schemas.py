"""Bodies of the documents service (French field names: DOMAIN.md §3, §8) and the facts it consumes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from mif_common.bodies import RefId, blank_to_none, text_block
from mif_documents.models import Categorie, StatutIntervention

Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), AfterValidator(text_block)
]


def _categorie(value: Any) -> Any:
    """A blank part means the default; case and surrounding spaces do not matter."""
    if isinstance(value, str):
        return value.strip().lower() or Categorie.autre.value
    return value


class UploadForm(BaseModel):
    """The small parts of an upload's form, next to `file`."""

    model_config = ConfigDict(extra="ignore")

    categorie: Annotated[Categorie, BeforeValidator(_categorie)] = Field(
        default=Categorie.autre, description="photo, rapport, manuel, certificat or autre (default)."
    )
    description: Annotated[Description | None, BeforeValidator(blank_to_none)] = None


class DocumentOut(BaseModel):
    id: int
    filename: str = Field(description="The original file name (sanitised), for display.")
    path: str = Field(
        description="Download URL: signed and expiring, usable without an Authorization header; 404 once expired."
    )
    mime: str = Field(description="Detected from the bytes.")
    taille: int = Field(description="Size in bytes.")
    sha256: str = Field(description="SHA-256 of the bytes, hex.")
    categorie: Categorie
    intervention_id: int
    uploaded_by: int
    description: str | None
    date_upload: datetime


# --- consumed: interventions events (docs/events/interventions-contract.md) ---------------------


class InterventionFact(BaseModel):
    """What documents keeps from the `data` of an `interventions.intervention.<verb>.v1` event
    (unknown fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    intervention_id: RefId
    client_id: RefId | None = None
    technicien_id: RefId | None = None
    statut: StatutIntervention
    occurred_at: AwareDatetime


class InterventionGone(BaseModel):
    """`interventions.intervention.deleted.v1` (not in the v1 contract; handled should it appear)."""

    model_config = ConfigDict(extra="ignore")

    intervention_id: RefId
    occurred_at: AwareDatetime


class InterventionAnswer(BaseModel):
    """The fields documents needs from interventions' `GET /api/v1/interventions/{id}` (read-through)."""

    model_config = ConfigDict(extra="ignore")

    id: RefId
    client_id: RefId | None = None
    technicien_id: RefId | None = None
    statut: StatutIntervention
    date_modification: AwareDatetime | None = None


# --- consumed: planning events (docs/events/planning-contract.md) -------------------------------


class TechnicienFact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    technicien_id: RefId
    user_id: RefId
    version: int = Field(ge=0)
