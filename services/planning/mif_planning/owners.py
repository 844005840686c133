"""The owners of the planning service's replicas, asked on a miss as the caller: auth for users,
assets for equipment."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.owners import ReadThrough
from mif_planning import replicas_repository as replicas_repo
from mif_planning.config import PlanningSettings
from mif_planning.models import EquipementRef, UserRef
from mif_planning.schemas import EquipementFact, UserFact
from mif_planning.service import VerificationIndisponible


def _owner_unavailable(what: str, service: str) -> VerificationIndisponible:
    return VerificationIndisponible(
        f"Cannot check the {what} now: the {service} service did not answer. Try again in a moment.",
        headers={"Retry-After": "5"},
    )


class _AuthUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    username: str
    email: str
    full_name: str
    role: str
    is_active: bool
    updated_at: AwareDatetime


class _AssetsEquipement(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    nom: str
    type: str | None = None
    statut: str
    client_id: int | None = None
    date_modification: AwareDatetime


class AuthUsers(ReadThrough[int, UserRef, _AuthUser]):
    """The users replica, asking auth on a miss as the caller."""

    def base_url(self, settings: PlanningSettings) -> str:
        return settings.auth_url

    async def replica(self, session: AsyncSession, key: int) -> UserRef | None:
        return await replicas_repo.user_ref(session, key)

    async def ask(self, key: int) -> _AuthUser | None:
        return await self.get(f"/api/v1/users/{key}", _AuthUser, unavailable=_owner_unavailable("user account", "auth"))

    async def remember(self, session: AsyncSession, answer: _AuthUser) -> None:
        # token_version is not in auth's answer; the replica only uses it for information.
        fact = UserFact(
            user_id=answer.id,
            username=answer.username,
            email=answer.email,
            full_name=answer.full_name,
            role=answer.role,
            is_active=answer.is_active,
            token_version=0,
        )
        await replicas_repo.upsert_user_ref(session, fact=fact, synced_at=answer.updated_at)


class AssetsEquipements(ReadThrough[int, EquipementRef, _AssetsEquipement]):
    """The equipment replica, asking assets on a miss as the caller."""

    def base_url(self, settings: PlanningSettings) -> str:
        return settings.assets_url

    async def replica(self, session: AsyncSession, key: int) -> EquipementRef | None:
        return await replicas_repo.equipement_ref(session, key)

    async def ask(self, key: int) -> _AssetsEquipement | None:
        return await self.get(
            f"/api/v1/equipements/{key}", _AssetsEquipement, unavailable=_owner_unavailable("equipment", "assets")
        )

    async def remember(self, session: AsyncSession, answer: _AssetsEquipement) -> None:
        fact = EquipementFact(
            equipement_id=answer.id,
            nom=answer.nom,
            type=answer.type,
            statut=answer.statut,
            client_id=answer.client_id,
            version=0,
            updated_at=answer.date_modification,
        )
        await replicas_repo.upsert_equipement_ref(session, fact=fact, supprime=False)


async def _known_equipement(
    session: AsyncSession, *, equipement_id: int, assets: AssetsEquipements
) -> EquipementRef | None:
    """An equipment from the replica, else from assets (once, cached). None when unknown or deleted."""
    equipement = await assets.known(session, equipement_id)
    if equipement is None or equipement.supprime:
        return None
    return equipement
