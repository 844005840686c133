"""The replicas read on the write path: an equipment (asking assets, as the caller, on a miss) and an
active technician."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.owners import ReadThrough
from mif_interventions import repository as repo
from mif_interventions.config import InterventionsSettings
from mif_interventions.models import EquipementRef
from mif_interventions.service import AssetsIndisponible, EquipementInconnu, TechnicienInconnu


class _AssetsEquipement(BaseModel):
    """The fields interventions needs from assets' `GET /api/v1/equipements/{id}` answer."""

    model_config = ConfigDict(extra="ignore")

    id: int
    nom: str
    client_id: int | None
    statut: str
    date_modification: AwareDatetime


class AssetsEquipements(ReadThrough[int, EquipementRef, _AssetsEquipement]):
    """The equipment replica, asking assets on a miss as the caller (assets applies the caller's
    row-level rules): None when assets does not show that equipment to the caller."""

    def base_url(self, settings: InterventionsSettings) -> str:
        return settings.assets_url

    def timeout_seconds(self, settings: InterventionsSettings) -> float:
        return settings.assets_timeout_seconds

    async def replica(self, session: AsyncSession, key: int) -> EquipementRef | None:
        return await repo.equipement_ref(session, key)

    async def ask(self, key: int) -> _AssetsEquipement | None:
        unavailable = AssetsIndisponible(
            "Cannot check the equipment now: the assets service did not answer. Try again in a moment.",
            headers={"Retry-After": "5"},
        )
        return await self.get(f"/api/v1/equipements/{key}", _AssetsEquipement, unavailable=unavailable)

    async def remember(self, session: AsyncSession, answer: _AssetsEquipement) -> None:
        # Version 0: the next event about this equipment (version >= 1) supersedes what we learnt here.
        await repo.upsert_equipement_ref(
            session,
            id=answer.id,
            nom=answer.nom,
            client_id=answer.client_id,
            statut=answer.statut,
            version=0,
            updated_at=answer.date_modification,
        )


async def _equipement_pour(
    session: AsyncSession,
    *,
    equipement_id: int,
    principal: Principal,
    assets: AssetsEquipements,
) -> EquipementRef:
    """The equipment an intervention is about: it must exist and, for a client user, be its own (the
    same sentence either way, so nothing leaks)."""
    ref = await assets.known(session, equipement_id)
    only = principal.organisation()
    if ref is None or (only is not None and ref.client_id != only):
        raise EquipementInconnu(
            f"Equipment {equipement_id} does not exist.",
            errors=[{"field": "equipement_id", "message": "unknown equipment"}],
        )
    if ref.statut == "retire":
        raise EquipementInconnu(
            f"Equipment {equipement_id} ('{ref.nom}') is retired: no intervention can be opened on it.",
            errors=[{"field": "equipement_id", "message": "retired equipment"}],
        )
    return ref


async def _technicien_actif(session: AsyncSession, technicien_id: int) -> int:
    ref = await repo.technicien_ref(session, technicien_id)
    if ref is None or not ref.is_active:
        raise TechnicienInconnu(
            f"Technician {technicien_id} is not an active technician.",
            errors=[{"field": "technicien_id", "message": "unknown or inactive technician"}],
        )
    return technicien_id
