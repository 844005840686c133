"""Bodies of the meter rules (usage, seuil, variation plans: the fields a `PlanCreate` / `PlanUpdate`
adds to a calendar plan's, and which kind takes which), and the `data` of assets' meter events planning
consumes (`assets.compteur.*.v1`, `assets.releves.recorded.v1`: the contract of issue #17)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from mif_common.bodies import RefId, Strict, single_line
from mif_planning.models import Declencheur, Operateur, Priorite

# A meter rule's numbers: finite, and far from the limits of a double.
Nombre = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]
# Condition rules: how long beyond the threshold (seuil), or the rate's window (variation, at most a day).
DUREE_MAX_MINUTES = 7 * 24 * 60
FENETRE_VARIATION_MAX_MINUTES = 24 * 60

# The fields of each kind of plan (besides equipement_id, statut, commentaire, technicien_id).
CHAMPS: dict[Declencheur, tuple[str, ...]] = {
    Declencheur.calendrier: ("frequence", "prochaine_date"),
    Declencheur.usage: ("compteur_id", "intervalle"),
    Declencheur.seuil: ("compteur_id", "operateur", "seuil", "duree_minutes", "priorite", "titre"),
    Declencheur.variation: ("compteur_id", "operateur", "seuil", "duree_minutes", "priorite", "titre"),
}
OBLIGATOIRES: dict[Declencheur, tuple[str, ...]] = {
    Declencheur.calendrier: ("frequence",),
    Declencheur.usage: ("compteur_id", "intervalle"),
    Declencheur.seuil: ("compteur_id", "operateur", "seuil", "duree_minutes"),
    Declencheur.variation: ("compteur_id", "operateur", "seuil", "duree_minutes"),
}
RULE_FIELDS = ("frequence", "prochaine_date", "compteur_id", "intervalle", "operateur", "seuil", "duree_minutes")


def kind_problems(declencheur: Declencheur, sent: dict[str, Any], *, creating: bool) -> list[tuple[str, str]]:
    """(field, message) for each field a plan of this kind does not take, or needs and lacks."""
    problems = [
        (f, f"not a field of a '{declencheur.value}' plan")
        for f in (*RULE_FIELDS, "priorite", "titre")
        if f in sent and f not in CHAMPS[declencheur]
    ]
    if creating:
        problems += [
            (f, f"required for a '{declencheur.value}' plan") for f in OBLIGATOIRES[declencheur] if sent.get(f) is None
        ]
    duree = sent.get("duree_minutes")
    if declencheur is Declencheur.variation and duree is not None and not 1 <= duree <= FENETRE_VARIATION_MAX_MINUTES:
        problems.append(("duree_minutes", f"a rate's window is 1 to {FENETRE_VARIATION_MAX_MINUTES} minutes"))
    return problems


def check_kind_fields(declencheur: Declencheur, sent: dict[str, Any], *, creating: bool) -> None:
    """A body's fields must be those of its plan's kind: a validation error naming each other field."""
    problems = kind_problems(declencheur, sent, creating=creating)
    if problems:
        raise ValidationError.from_exception_data(
            "PlanCreate",
            [
                InitErrorDetails(type=PydanticCustomError("plan_kind", message), loc=(field,), input=sent.get(field))
                for field, message in problems
            ],
        )


class RuleFields(Strict):
    compteur_id: RefId | None = Field(
        default=None, description="usage, seuil, variation: the meter (assets) the rule watches."
    )
    intervalle: Annotated[Nombre, Field(gt=0)] | None = Field(
        default=None, description="usage: every this many units of the counter (500 for every 500 h)."
    )
    operateur: Operateur | None = Field(default=None, description="seuil, variation: `>` or `<`.")
    seuil: Nombre | None = Field(
        default=None, description="seuil: the value; variation: the rate per hour (5 for 5 °C/h)."
    )
    duree_minutes: Annotated[int, Field(ge=0, le=DUREE_MAX_MINUTES)] | None = Field(
        default=None,
        description="seuil: how long the readings stay beyond before it triggers (0: at once); variation: the "
        "window the rate is fitted over (1 to 1440).",
    )
    priorite: Priorite | None = Field(default=None, description="seuil, variation: the corrective's priority.")
    titre: (
        Annotated[
            str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(single_line)
        ]
        | None
    ) = Field(default=None, description="seuil, variation: the corrective intervention's title.")


# --- consumed: assets' meters and readings ------------------------------------------------------


class CompteurFact(BaseModel):
    """`data` of `assets.compteur.created|updated|deleted.v1`; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    compteur_id: RefId
    equipement_id: RefId
    code: str = Field(min_length=1, max_length=100)
    nom: str = Field(max_length=200)
    nature: str = Field(max_length=20)
    unite: str = Field(max_length=30)
    version: int = Field(ge=0)
    updated_at: AwareDatetime


class ReleveFact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    horodatage: AwareDatetime
    valeur: float = Field(allow_inf_nan=False)
    remise_a_zero: bool = False


class RelevesFact(BaseModel):
    """`data` of `assets.releves.recorded.v1`: one accepted batch of new readings of one meter."""

    model_config = ConfigDict(extra="ignore")

    compteur_id: RefId
    equipement_id: RefId
    code: str = Field(min_length=1, max_length=100)
    nature: str = Field(max_length=20)
    unite: str = Field(max_length=30)
    source: str | None = None
    nombre: int = Field(ge=0)
    remise_a_zero: bool = False
    releves: list[ReleveFact] = Field(max_length=1000)
    occurred_at: datetime | None = None

    def sorted_releves(self) -> list[ReleveFact]:
        return sorted(self.releves, key=lambda r: r.horodatage)
