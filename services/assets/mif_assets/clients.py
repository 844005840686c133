"""Client organisations: create, read, edit, deactivate."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets import repository as repo
from mif_assets.events import ClientCreated, ClientDeactivated, ClientEvent, ClientUpdated
from mif_assets.models import Client
from mif_assets.schemas import ClientCreate, ClientUpdate
from mif_assets.service import (
    ClientIntrouvable,
    NomDejaPris,
    _check_after,
    _flush_unique,
    _plain,
)
from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.events import add_event


async def _publish_client(session: AsyncSession, event_cls: type[ClientEvent], client: Client, **extra: Any) -> None:
    await add_event(
        session,
        event_cls(
            client_id=client.id,
            nom_entreprise=client.nom_entreprise,
            type_client=client.type_client,
            niveau_service=client.niveau_service,
            is_active=client.is_active,
            ville=client.ville,
            pays=client.pays,
            contrat_debut=client.contrat_debut,
            contrat_fin=client.contrat_fin,
            type_contrat=client.type_contrat,
            version=client.version,
            updated_at=client.date_modification,
            **extra,
        ),
        subject=client.id,
    )


async def _ensure_client_name_free(session: AsyncSession, nom: str, *, except_id: int | None) -> None:
    other = await repo.client_named(session, nom, except_id=except_id)
    if other is not None:
        raise NomDejaPris(
            f"A client organisation named '{other.nom_entreprise}' already exists (id {other.id}); "
            "choose another name.",
            errors=[{"field": "nom_entreprise", "message": "already used by another client organisation"}],
        )


def _check_contract(debut: date | None, fin: date | None) -> None:
    _check_after(debut, fin, start_field="contrat_debut", end_field="contrat_fin", strictly=True)


async def create_client(session: AsyncSession, *, data: ClientCreate) -> Client:
    """A new client organisation, active."""
    values = _plain(data.model_dump())
    _check_contract(values["contrat_debut"], values["contrat_fin"])
    await _ensure_client_name_free(session, values["nom_entreprise"], except_id=None)
    client = Client(**values, is_active=True, version=1)
    session.add(client)
    await _flush_unique(session)
    await session.refresh(client)
    await _publish_client(session, ClientCreated, client)
    return client


async def get_client(session: AsyncSession, *, client_id: int, principal: Principal) -> Client:
    """One organisation; a client user asking for another one gets the same 404 as for a missing one."""
    only = principal.organisation()
    client = None if only is not None and only != client_id else await repo.client_by_id(session, client_id)
    if client is None:
        raise ClientIntrouvable(f"No client organisation with id {client_id}.")
    return client


async def _client_for_update(session: AsyncSession, client_id: int) -> Client:
    client = await repo.client_by_id(session, client_id, for_update=True)
    if client is None:
        raise ClientIntrouvable(f"No client organisation with id {client_id}.")
    return client


async def update_client(session: AsyncSession, *, client_id: int, data: ClientUpdate) -> Client:
    """Partial update; `is_active` false deactivates, true reactivates."""
    client = await _client_for_update(session, client_id)
    sent = _plain(data.model_dump(exclude_unset=True))
    changes = {k: v for k, v in sent.items() if getattr(client, k) != v}
    if "nom_entreprise" in changes:
        await _ensure_client_name_free(session, changes["nom_entreprise"], except_id=client.id)
    _check_contract(changes.get("contrat_debut", client.contrat_debut), changes.get("contrat_fin", client.contrat_fin))
    if not changes:
        return client
    for key, value in changes.items():
        setattr(client, key, value)
    client.version += 1
    client.date_modification = now()
    await _flush_unique(session)
    if changes.get("is_active") is False:
        await _publish_client(session, ClientDeactivated, client)
    else:
        await _publish_client(session, ClientUpdated, client, changed=sorted(changes))
    return client


async def deactivate_client(session: AsyncSession, *, client_id: int) -> None:
    """Soft delete: the organisation stays (its equipment and history refer to it), inactive."""
    client = await _client_for_update(session, client_id)
    if not client.is_active:
        return
    client.is_active = False
    client.version += 1
    client.date_modification = now()
    await session.flush()
    await _publish_client(session, ClientDeactivated, client)
