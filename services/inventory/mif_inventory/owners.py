"""The owners inventory asks, as the caller, about what its replicas miss: interventions (who may use
parts on one) and assets (an equipment's type, for the parts that fit it)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.bodies import RefId
from mif_common.errors import ServiceUnavailable
from mif_common.intervention_scope import InterventionsOwner
from mif_common.owners import ReadThrough
from mif_inventory import replicas_repository as replicas_repo
from mif_inventory.config import InventorySettings
from mif_inventory.models import EquipementRef


class OwnerSilent(ServiceUnavailable):
    slug = "owner-unavailable"


def _unavailable(what: str, service: str) -> OwnerSilent:
    return OwnerSilent(
        f"Cannot check the {what} now: the {service} service did not answer. Try again in a moment.",
        headers={"Retry-After": "5"},
    )


class InterventionAnswer(BaseModel):
    """The fields inventory needs from interventions' `GET /api/v1/interventions/{id}`."""

    model_config = ConfigDict(extra="ignore")

    id: RefId
    equipement_id: RefId | None = None
    client_id: RefId | None = None
    technicien_id: RefId | None = None
    statut: str = Field(max_length=20)
    date_modification: AwareDatetime | None = None


class InterventionsClient(InterventionsOwner):
    """Interventions, asked about one intervention as the caller (`service.visible_intervention`)."""

    async def answer(self, intervention_id: int) -> InterventionAnswer | None:
        """The intervention as the caller sees it; None when it does not exist or is not visible to them."""
        return await self.fetch(
            intervention_id,
            InterventionAnswer,
            unavailable=_unavailable(f"intervention {intervention_id}", "interventions"),
        )


class _AssetsEquipement(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: RefId
    type: str = Field(max_length=100)
    date_modification: AwareDatetime


class AssetsEquipements(ReadThrough[int, EquipementRef, _AssetsEquipement]):
    """The equipment replica (its type), asking assets on a miss as the caller."""

    def base_url(self, settings: InventorySettings) -> str:
        return settings.assets_url

    async def replica(self, session: AsyncSession, key: int) -> EquipementRef | None:
        return await replicas_repo.equipement_ref(session, key)

    async def ask(self, key: int) -> _AssetsEquipement | None:
        return await self.get(
            f"/api/v1/equipements/{key}", _AssetsEquipement, unavailable=_unavailable("equipment", "assets")
        )

    async def remember(self, session: AsyncSession, answer: _AssetsEquipement) -> None:
        await replicas_repo.upsert_equipement_ref(
            session, equipement_id=answer.id, type_=answer.type, updated_at=answer.date_modification, supprime=False
        )
