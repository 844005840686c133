"""What the interventions service's routers share: who may call, the caller as an author, the owners'
clients, the read session, and an intervention as the API shows it.

The routes are in `interventions_api` (list, search, create, read, edit), `transitions_api` (workflow
moves), `comments_api` (history and comments) and `dashboard_api`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import CurrentPrincipal, Principal, Role, require_roles
from mif_common.datetimes import now
from mif_common.json_bodies import dump_rows
from mif_common.pagination import PageParams, page_params
from mif_common.request_context import client_ip
from mif_interventions import owners, service
from mif_interventions import repository as repo
from mif_interventions.dispatch import PlanningClient
from mif_interventions.lateness import is_late

Page = Annotated[PageParams, Depends(page_params)]
Createur = Annotated[Principal, Depends(require_roles(Role.responsable, Role.client))]
Editeur = Annotated[Principal, Depends(require_roles(Role.responsable, Role.technicien))]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=200, description='The ETag you read (`"3"`); a stale one is 412.'),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retry-safe creation: the same key and body answer the same intervention (201 again, "
        "with `Idempotent-Replayed: true`); the same key with another body is 422.",
    ),
]


async def auteur_de(request: Request, principal: CurrentPrincipal) -> service.Auteur:
    """The caller, its address (the hop the gateway saw) and user agent, for the history."""
    peer = request.client.host if request.client else None
    agent = request.headers.get("user-agent")
    return service.Auteur(
        principal=principal, ip=client_ip(request.headers, peer), user_agent=agent[:500] if agent else None
    )


AuteurDep = Annotated[service.Auteur, Depends(auteur_de)]


# The owners, asked as the caller: planning which technician to assign when none is given, assets about
# an equipment missing from the replica.
PlanningDep = Annotated[PlanningClient, Depends(PlanningClient.for_request)]
AssetsDep = Annotated[owners.AssetsEquipements, Depends(owners.AssetsEquipements.for_request)]


# Single reads and the dashboard read through `mif_common.db.ReadSession` (AUTOCOMMIT, no transaction);
# lists open the same kind of connection without a session and run their statement on the asyncpg
# connection itself (`mif_common.listing.ReadConnections`, `repository.page_and_total`).


def _json(content: Any) -> bytes:
    """The JSON of an answer built by hand: orjson writes the same bytes as pydantic's `to_json` for
    what an intervention holds (UTC datetimes as `...Z`, non-ASCII as UTF-8), about 3x faster."""
    return dump_rows(content)


def _present(item: dict[str, Any], at: datetime) -> dict[str, Any]:
    """A row (LIST_COLUMNS) as the API shows an intervention, list rows and single reads alike: the
    fields of `InterventionOut`, built in place (the list's hot path: no model validation)."""
    full_name = item.pop("technicien_full_name")
    nom = item.pop("equipement_nom")
    limite = item["date_limite"]
    item["en_retard"] = is_late(limite, item["statut"], at)
    tid = item["technicien_id"]
    item["technicien"] = {"id": tid, "full_name": full_name} if tid is not None else None
    item["equipement"] = {"id": item["equipement_id"], "nom": nom}
    # The real cost shown: the one a user gave, else the parts cost (the only real cost known). Only the
    # answer says so: the stored `cout_reel` stays what the user gave (null), so a later parts cost, or a
    # user's figure, still shows through.
    if item["cout_reel"] is None:
        item["cout_reel"] = item["cout_pieces"]
    return item


async def _answer(
    session: AsyncSession, intervention_id: int, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    row = await repo.row_of(session, intervention_id)
    assert row is not None
    body = _json(_present(row, now()))
    return Response(
        body,
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": service.etag(row), **(headers or {})},
    )
