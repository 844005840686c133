"""Queries of the assets service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.models import (
    CLIENT_SEARCH_SQL,
    EQUIPEMENT_SEARCH_SQL,
    OPEN_INTERVENTION_STATUTS,
    Client,
    Equipement,
    EquipementStatutHistorique,
    InterventionRef,
)
from mif_assets.schemas import ClientOut, EquipementOut
from mif_common.listing import ListQuery, any_of, equals, like_pattern, lower_equals, model_columns, search
from mif_common.pagination import Sortable
from mif_common.replicas import Replica, not_older
from mif_common.unique import holder_of

# --- clients ------------------------------------------------------------------------------------


async def client_by_id(
    session: AsyncSession, client_id: int, *, for_update: bool = False, for_share: bool = False
) -> Client | None:
    query = sa.select(Client).where(Client.id == client_id)
    if for_update or for_share:
        # Locked reads always see the committed row, never a stale object of the identity map.
        query = query.with_for_update(read=for_share).execution_options(populate_existing=True)
    return await session.scalar(query)


async def client_named(session: AsyncSession, nom: str, *, except_id: int | None = None) -> Client | None:
    """The client organisation called `nom` (case-insensitive), other than `except_id`."""
    query = sa.select(Client).where(sa.func.lower(Client.nom_entreprise) == nom.lower())
    if except_id is not None:
        query = query.where(Client.id != except_id)
    return await session.scalar(query)


# The lists: one statement per request, compiled once per shape, rows as the response model's fields
# (mif_common.listing). Each WHERE term's value is the parameter of its name; `q` is a search: its
# matches are found through the trigram index first, whatever the sort.


def clients_list(sort: Mapping[str, Sortable]) -> ListQuery:
    return ListQuery(
        columns=model_columns(ClientOut, Client),
        source=Client,
        key=Client.id,
        terms={
            "only_client_id": lambda: equals(Client.id, "only_client_id"),
            "is_active": lambda: equals(Client.is_active, "is_active"),  # NOT NULL: `=` is `IS`
            "type_client": lambda: equals(Client.type_client, "type_client"),
            "niveau_service": lambda: equals(Client.niveau_service, "niveau_service"),
            "ville": lambda: lower_equals(Client.ville, "ville"),
            "q": lambda: search(CLIENT_SEARCH_SQL),
        },
        sort=sort,
        default=[Client.id],
    )


def clients_terms(
    *,
    only_client_id: int | None,
    is_active: bool | None,
    type_client: str | None,
    niveau_service: str | None,
    ville: str | None,
    q: str | None,
) -> dict[str, Any]:
    """The list of client organisations' terms; `only_client_id` restricts it to one (a client user's own)."""
    terms: dict[str, Any] = {}
    if only_client_id is not None:
        terms["only_client_id"] = only_client_id
    if is_active is not None:
        terms["is_active"] = is_active
    if type_client is not None:
        terms["type_client"] = type_client
    if niveau_service is not None:
        terms["niveau_service"] = niveau_service
    if ville is not None:
        terms["ville"] = ville.lower()
    if q is not None:
        terms["q"] = like_pattern(q)
    return terms


# --- equipements --------------------------------------------------------------------------------


async def equipement_by_id(session: AsyncSession, equipement_id: int, *, for_update: bool = False) -> Equipement | None:
    query = sa.select(Equipement).where(Equipement.id == equipement_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def equipement_named(session: AsyncSession, nom: str, *, except_id: int | None = None) -> Equipement | None:
    query = sa.select(Equipement).where(sa.func.lower(Equipement.nom) == nom.lower())
    if except_id is not None:
        query = query.where(Equipement.id != except_id)
    return await session.scalar(query)


async def equipement_with_serial(
    session: AsyncSession, numero_serie: str, *, except_id: int | None = None
) -> Equipement | None:
    return await holder_of(session, Equipement, Equipement.numero_serie, numero_serie, except_id=except_id)


def equipements_list(sort: Mapping[str, Sortable]) -> ListQuery:
    return ListQuery(
        columns=model_columns(EquipementOut, Equipement),
        source=Equipement,
        key=Equipement.id,
        terms={
            "only_client_id": lambda: equals(Equipement.client_id, "only_client_id"),
            "statut": lambda: any_of(Equipement.statut, "statut"),
            "criticite": lambda: any_of(Equipement.criticite, "criticite"),
            "client_id": lambda: equals(Equipement.client_id, "client_id"),
            "type": lambda: lower_equals(Equipement.type, "type"),
            "localisation": lambda: lower_equals(Equipement.localisation, "localisation"),
            "q": lambda: search(EQUIPEMENT_SEARCH_SQL),
        },
        sort=sort,
        default=[Equipement.id],
    )


def equipements_terms(
    *,
    only_client_id: int | None,
    statut: Sequence[str],
    criticite: Sequence[str],
    client_id: int | None,
    type_: str | None,
    localisation: str | None,
    q: str | None,
) -> dict[str, Any]:
    """The equipment list's terms; `only_client_id` restricts it to one organisation (a client user's own)."""
    terms: dict[str, Any] = {}
    if only_client_id is not None:
        terms["only_client_id"] = only_client_id
    if statut:
        terms["statut"] = list(statut)
    if criticite:
        terms["criticite"] = list(criticite)
    if client_id is not None:
        terms["client_id"] = client_id
    if type_ is not None:
        terms["type"] = type_.lower()
    if localisation is not None:
        terms["localisation"] = localisation.lower()
    if q is not None:
        terms["q"] = like_pattern(q)
    return terms


def historique_query(equipement_id: int) -> sa.Select[EquipementStatutHistorique]:
    return sa.select(EquipementStatutHistorique).where(EquipementStatutHistorique.equipement_id == equipement_id)


# --- intervention replica -----------------------------------------------------------------------


INTERVENTIONS = Replica(InterventionRef, key="intervention_id", newer=not_older("occurred_at"))


async def upsert_intervention_ref(
    session: AsyncSession, *, intervention_id: int, equipement_id: int, statut: str, occurred_at: datetime
) -> bool:
    """Insert or update one replica row unless it already holds a later fact; False when stale."""
    values = {
        "intervention_id": intervention_id,
        "equipement_id": equipement_id,
        "statut": statut,
        "occurred_at": occurred_at,
    }
    return await INTERVENTIONS.upsert(session, values) is not None


async def count_references(session: AsyncSession, equipement_id: int) -> int:
    """How many interventions (whatever their statut) reference the equipment."""
    count = await session.scalar(
        sa.select(sa.func.count()).select_from(InterventionRef).where(InterventionRef.equipement_id == equipement_id)
    )
    return int(count or 0)


async def has_open_interventions(session: AsyncSession, equipement_id: int) -> bool:
    return bool(
        await session.scalar(
            sa.select(
                sa.exists().where(
                    InterventionRef.equipement_id == equipement_id,
                    InterventionRef.statut.in_(OPEN_INTERVENTION_STATUTS),
                )
            )
        )
    )
