"""The owner of the client organisations replica: assets, asked as the caller on a miss."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import repository as repo
from mif_auth.config import AuthSettings
from mif_auth.models import ClientRef
from mif_auth.replicas import remember_client_organisation
from mif_auth.service import ClientCheckUnavailable, UnknownClientOrganisation
from mif_common.owners import ReadThrough


class _AssetsClient(BaseModel):
    """The fields auth needs from assets' `GET /api/v1/clients/{id}` answer."""

    model_config = ConfigDict(extra="ignore")

    id: int
    nom_entreprise: str
    is_active: bool
    date_modification: AwareDatetime


def _assets_unavailable() -> ClientCheckUnavailable:
    return ClientCheckUnavailable(
        "Cannot check the client organisation now: the assets service did not answer. Try again in a moment.",
        headers={"Retry-After": "5"},
    )


class AssetsOrganisations(ReadThrough[int, ClientRef, _AssetsClient]):
    """The client organisations replica, asking assets on a miss as the caller (assets applies the
    caller's row-level rules): None when assets does not know the organisation."""

    def base_url(self, settings: AuthSettings) -> str:
        return settings.assets_url

    async def replica(self, session: AsyncSession, key: int) -> ClientRef | None:
        return await repo.client_ref(session, key)

    async def ask(self, key: int) -> _AssetsClient | None:
        return await self.get(f"/api/v1/clients/{key}", _AssetsClient, unavailable=_assets_unavailable())

    async def remember(self, session: AsyncSession, answer: _AssetsClient) -> None:
        await remember_client_organisation(
            session,
            client_id=answer.id,
            nom_entreprise=answer.nom_entreprise,
            is_active=answer.is_active,
            updated_at=answer.date_modification,
        )


async def _check_client_organisation(
    session: AsyncSession,
    *,
    client_id: int,
    assets: AssetsOrganisations | None,
) -> None:
    """A client user must belong to an organisation that assets knows and that is active (without
    `assets`, an organisation missing from the replica cannot be checked: 503)."""
    if assets is not None:
        ref = await assets.known(session, client_id)
    elif (ref := await repo.client_ref(session, client_id)) is None:
        raise _assets_unavailable()
    if ref is None:
        raise UnknownClientOrganisation(
            f"No client organisation with id {client_id}; create the organisation first, then its users.",
            errors=[{"field": "client_id", "message": "unknown client organisation"}],
        )
    if not ref.is_active:
        raise UnknownClientOrganisation(
            f"The client organisation '{ref.nom_entreprise}' (id {client_id}) is deactivated; "
            "reactivate it before giving it users.",
            errors=[{"field": "client_id", "message": "deactivated client organisation"}],
        )
