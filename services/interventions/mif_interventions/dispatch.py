"""One-click dispatch: which technician takes an intervention when "Affecter" comes without one.

Planning owns that decision (competence for the equipment's type, availability, lowest workload: the
rule of `GET /api/v1/techniciens/recommandation`); interventions asks it, as the caller, and keeps no
copy of its rules. The answer also teaches the technician replica what it may not have heard yet.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, RootModel

from mif_common.errors import Conflict, ServiceUnavailable
from mif_common.owners import OwnerClient
from mif_interventions.config import InterventionsSettings

logger = logging.getLogger(__name__)


class PlanningIndisponible(ServiceUnavailable):
    slug = "planning-unavailable"


class AucunTechnicienDisponible(Conflict):
    slug = "no-technician-available"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Utilisateur(_Lenient):
    username: str
    full_name: str | None = None


class _Technicien(_Lenient):
    id: int
    user_id: int
    user: _Utilisateur
    is_active: bool
    version: int


class _Competence(_Lenient):
    nom: str


class Recommande(_Lenient):
    """Planning's best match for an intervention's equipment."""

    technicien: _Technicien
    competence: _Competence | None = None
    niveau: str | None = None
    charge_travail: int

    @property
    def full_name(self) -> str:
        return self.technicien.user.full_name or self.technicien.user.username

    def motif(self) -> str:
        """Why planning chose this technician, in the words of the history row."""
        raisons = []
        if self.competence is not None:
            niveau = f", niveau {self.niveau}" if self.niveau else ", sans ce niveau renseigné"
            raisons.append(f"compétence {self.competence.nom}{niveau}")
        raisons.append(f"charge de travail {self.charge_travail}")
        return (
            f"Affectation automatique : {self.full_name} (technicien {self.technicien.id}), recommandé par la "
            f"planification ({'; '.join(raisons)})."
        )


class _Recommandations(RootModel[list[Recommande]]):
    pass


class PlanningClient(OwnerClient):
    """Asks the planning service, as the caller (its `Authorization`), whom to assign."""

    def base_url(self, settings: InterventionsSettings) -> str:
        return settings.planning_url

    def timeout_seconds(self, settings: InterventionsSettings) -> float:
        return settings.planning_timeout_seconds

    async def recommande(self, *, intervention_id: int, equipement_id: int) -> Recommande:
        """The technician planning ranks first for this equipment; 409 when nobody can take work now;
        503 with Retry-After when planning cannot answer."""
        unavailable = PlanningIndisponible(
            "Cannot choose a technician now: the planning service did not answer. Try again in a moment, or "
            "assign one by hand (technicien_id).",
            headers={"Retry-After": "5"},
        )
        answer = await self.get(
            f"/api/v1/techniciens/recommandation?equipement_id={equipement_id}&limit=1",
            _Recommandations,
            unavailable=unavailable,
            absent=(),
        )
        best = answer.root[0] if answer is not None and answer.root else None
        if best is None or not best.technicien.is_active:
            raise AucunTechnicienDisponible(
                f"No technician can take intervention {intervention_id} now: every active technician is on "
                "leave, in training or unavailable. Assign one by hand with technicien_id "
                f"(PATCH /api/v1/interventions/{intervention_id}/statut?statut=affectee&technicien_id=<id>); "
                "GET /api/v1/techniciens lists them."
            )
        return best
