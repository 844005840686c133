"""Events the auth service consumes: assets' client organisations, kept in the `client_ref` replica
(a client user must belong to a known, active organisation)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import replicas
from mif_common.events import CloudEvent, Handler


class ClientFact(BaseModel):
    """What auth reads from `assets.client.*.v1`; the other fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    client_id: int = Field(gt=0)
    nom_entreprise: str
    is_active: bool
    updated_at: AwareDatetime


async def on_client_changed(session: AsyncSession, event: CloudEvent) -> None:
    """Created, updated or deactivated: upsert the replica; an older event never overwrites a newer one."""
    fact = ClientFact.model_validate(event.data)
    await replicas.remember_client_organisation(
        session,
        client_id=fact.client_id,
        nom_entreprise=fact.nom_entreprise,
        is_active=fact.is_active,
        updated_at=fact.updated_at,
    )


HANDLERS: dict[str, Handler] = {
    f"assets.client.{verb}.v1": on_client_changed for verb in ("created", "updated", "deactivated")
}
