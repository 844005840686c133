"""The owners reports asks, as the caller, for what no event carries: a work order's history, report
text, checklist and documents (interventions, documents), and the plans list (planning publishes no plan
snapshots). The owner applies the caller's own rules: what it does not show, the report does not show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, RootModel

from mif_common.errors import ServiceUnavailable
from mif_common.owners import OwnerClient
from mif_reports.config import ReportsSettings


class OwnerSilent(ServiceUnavailable):
    slug = "owner-unavailable"


def _unavailable(service: str) -> OwnerSilent:
    return OwnerSilent(
        f"Cannot build the report now: the {service} service did not answer. Try again in a moment.",
        headers={"Retry-After": "5"},
    )


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InterventionDetail(_Loose):
    id: int
    titre: str
    description: str | None = None
    type: str
    statut: str
    priorite: str
    equipement_id: int
    client_id: int | None = None
    technicien_id: int | None = None
    date_creation: datetime
    date_limite: datetime | None = None
    date_debut_travaux: datetime | None = None
    date_cloture: datetime | None = None
    duree_reelle: int | None = None
    cout_reel: int | None = None
    cout_pieces: int | None = None
    rapport: str | None = None


class HistoriqueLigne(_Loose):
    action: str
    statut: str | None = None
    ancien_statut: str | None = None
    remarque: str | None = None
    user_id: int | None = None
    horodatage: datetime


class EtapeLigne(_Loose):
    ordre: int
    type: str
    libelle: str
    obligatoire: bool
    unite: str | None = None
    min: float | None = None
    max: float | None = None
    fait: bool | None = None
    valeur_mesure: float | None = None
    texte: str | None = None
    document_id: int | None = None
    hors_limites: bool = False
    rempli: bool = False


class DocumentLigne(_Loose):
    filename: str
    categorie: str | None = None
    taille: int | None = None
    date_upload: datetime | None = None


class Historique(RootModel[list[HistoriqueLigne]]):
    pass


class Etapes(RootModel[list[EtapeLigne]]):
    pass


class Documents(RootModel[list[DocumentLigne]]):
    pass


class Plans(RootModel[list[dict[str, Any]]]):
    pass


class InterventionsClient(OwnerClient):
    def base_url(self, settings: ReportsSettings) -> str:
        return settings.interventions_url

    async def detail(self, intervention_id: int) -> InterventionDetail | None:
        return await self.get(
            f"/api/v1/interventions/{intervention_id}", InterventionDetail, unavailable=_unavailable("interventions")
        )

    async def historique(self, intervention_id: int) -> list[HistoriqueLigne]:
        found = await self.get(
            f"/api/v1/interventions/{intervention_id}/historique?limit=500",
            Historique,
            unavailable=_unavailable("interventions"),
        )
        return found.root if found is not None else []

    async def checklist(self, intervention_id: int) -> list[EtapeLigne]:
        found = await self.get(
            f"/api/v1/interventions/{intervention_id}/checklist", Etapes, unavailable=_unavailable("interventions")
        )
        return found.root if found is not None else []


class DocumentsClient(OwnerClient):
    def base_url(self, settings: ReportsSettings) -> str:
        return settings.documents_url

    async def of_intervention(self, intervention_id: int) -> list[DocumentLigne]:
        found = await self.get(f"/api/v1/documents/{intervention_id}", Documents, unavailable=_unavailable("documents"))
        return found.root if found is not None else []


class PlanningClient(OwnerClient):
    def base_url(self, settings: ReportsSettings) -> str:
        return settings.planning_url

    async def plans(self, *, limit: int, offset: int) -> list[dict[str, Any]]:
        found = await self.get(
            f"/api/v1/planning?limit={limit}&offset={offset}", Plans, unavailable=_unavailable("planning")
        )
        return found.root if found is not None else []
