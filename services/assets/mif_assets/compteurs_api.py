"""Routes of meters and their readings: `/api/v1/equipements/{id}/compteurs...`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from mif_assets import compteurs, releves
from mif_assets import releves_repository as repo
from mif_assets.compteurs_schemas import (
    CompteurCreate,
    CompteurOut,
    CompteurUpdate,
    PasOut,
    ReleveOut,
    RelevesAccepted,
    RelevesIn,
)
from mif_assets.models import Compteur
from mif_assets.releves import Lecture
from mif_assets.service import EquipementIntrouvable
from mif_common.auth import CurrentPrincipal, Manager, Principal, Role, require_roles
from mif_common.datetimes import DateTimeIn, now
from mif_common.db import Session
from mif_common.errors import Unprocessable
from mif_common.json_bodies import JSON_MEDIA_TYPE, dump_models, dump_rows
from mif_common.listing import ReadConnections
from mif_common.pagination import PageParams, json_page
from mif_common.params import EntityId

compteurs_router = APIRouter(prefix="/api/v1/equipements", tags=["compteurs"])

# Sensors and integrations post through an account of one of these roles (docs/assets.md).
Releveur = Annotated[Principal, Depends(require_roles(Role.responsable, Role.technicien))]

MAX_RAW_LIMIT = 10_000
# The history's range when `depuis` is not given with a `pas`.
DEFAULT_SPAN = timedelta(days=30)
FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(3000, 1, 1, tzinfo=UTC)


async def _page(
    limit: Annotated[int, Query(ge=1, le=MAX_RAW_LIMIT, description="Page size (max 10,000).")] = 1000,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Readings to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset, sort=None, q=None)


@compteurs_router.get(
    "/{equipement_id}/compteurs", response_model=list[CompteurOut], summary="The meters of an equipment"
)
async def list_compteurs(
    equipement_id: EntityId, request: Request, session: Session, principal: CurrentPrincipal
) -> Response:
    rows = await compteurs.list_compteurs(session, equipement_id=equipement_id, principal=principal)
    params = PageParams(limit=max(1, len(rows)), offset=0, sort=None, q=None)
    return json_page(
        request, dump_models([CompteurOut.model_validate(r) for r in rows]), total=len(rows), params=params
    )


@compteurs_router.post(
    "/{equipement_id}/compteurs",
    response_model=CompteurOut,
    status_code=201,
    summary="Add a meter (counter or gauge) to an equipment",
)
async def create_compteur(
    equipement_id: EntityId, body: CompteurCreate, session: Session, response: Response, principal: Manager
) -> Compteur:
    compteur = await compteurs.create_compteur(session, equipement_id=equipement_id, data=body, principal=principal)
    response.headers["Location"] = f"{compteurs_router.prefix}/{equipement_id}/compteurs/{compteur.id}"
    return compteur


@compteurs_router.get(
    "/{equipement_id}/compteurs/{compteur_id}", response_model=CompteurOut, summary="One meter of an equipment"
)
async def get_compteur(
    equipement_id: EntityId, compteur_id: EntityId, session: Session, principal: CurrentPrincipal
) -> Compteur:
    return await compteurs.get_compteur(
        session, equipement_id=equipement_id, compteur_id=compteur_id, principal=principal
    )


@compteurs_router.put(
    "/{equipement_id}/compteurs/{compteur_id}",
    response_model=CompteurOut,
    summary="Rename a meter or change its unit (partial)",
)
async def update_compteur(
    equipement_id: EntityId, compteur_id: EntityId, body: CompteurUpdate, session: Session, _: Manager
) -> Compteur:
    return await compteurs.update_compteur(session, equipement_id=equipement_id, compteur_id=compteur_id, data=body)


@compteurs_router.delete(
    "/{equipement_id}/compteurs/{compteur_id}", status_code=204, summary="Delete a meter and its readings"
)
async def delete_compteur(equipement_id: EntityId, compteur_id: EntityId, session: Session, _: Manager) -> Response:
    await compteurs.delete_compteur(session, equipement_id=equipement_id, compteur_id=compteur_id)
    return Response(status_code=204)


@compteurs_router.post(
    "/{equipement_id}/compteurs/{compteur_id}/releves",
    response_model=RelevesAccepted,
    status_code=201,
    summary="Record a batch of 1 to 1,000 readings (a reading already stored for its instant is ignored)",
)
async def post_releves(
    equipement_id: EntityId, compteur_id: EntityId, body: RelevesIn, session: Session, _: Releveur
) -> RelevesAccepted:
    compteur = await repo.lock_compteur(session, equipement_id=equipement_id, compteur_id=compteur_id)
    if compteur is None:
        raise compteurs.CompteurIntrouvable(f"No meter with id {compteur_id} on equipment {equipement_id}.")
    lectures = [Lecture(r.horodatage, r.valeur, r.remise_a_zero) for r in body.releves]
    result = await releves.ingest(session, compteur, lectures, body.source)
    return RelevesAccepted(
        acceptes=result.acceptes, doublons=result.doublons, premier=result.premier, dernier=result.dernier
    )


@compteurs_router.get(
    "/{equipement_id}/compteurs/{compteur_id}/releves",
    response_model=list[ReleveOut] | list[PasOut],
    summary="A meter's readings, oldest first; with `pas`, one row per bucket (min, moy, max, nombre)",
)
async def get_releves(
    equipement_id: EntityId,
    compteur_id: EntityId,
    request: Request,
    connections: ReadConnections,
    principal: CurrentPrincipal,
    params: Annotated[PageParams, Depends(_page)],
    depuis: Annotated[DateTimeIn | None, Query(description="From this instant (included).")] = None,
    jusqu_a: Annotated[DateTimeIn | None, Query(description="Until this instant (excluded).")] = None,
    pas: Annotated[
        str | None,
        Query(max_length=8, description="Downsample: 1m, 15m, 1h, 6h, 1d, 7d... (`<n>m`, `<n>h`, `<n>d`)."),
    ] = None,
) -> Response:
    step = releves.parse_pas(pas) if pas is not None else None
    only = principal.organisation()
    async with connections() as connection:
        compteur = await repo.read_compteur(connection, equipement_id=equipement_id, compteur_id=compteur_id)
        if compteur is None or (only is not None and compteur.client_id != only):
            if only is not None:
                raise EquipementIntrouvable(f"No equipment with id {equipement_id}.")
            raise compteurs.CompteurIntrouvable(f"No meter with id {compteur_id} on equipment {equipement_id}.")
        if step is None:
            rows, total = await repo.raw_page(
                connection,
                compteur_id=compteur_id,
                depuis=depuis or FAR_PAST,
                jusqu_a=jusqu_a or FAR_FUTURE,
                limit=params.limit,
                offset=params.offset,
            )
            return json_page(request, dump_rows([dict(r) for r in rows]), total=total, params=params)
        end = jusqu_a or now()
        start = depuis or end - DEFAULT_SPAN
        if end <= start:
            raise Unprocessable(
                "jusqu_a must be after depuis.", errors=[{"field": "jusqu_a", "message": "must be after depuis"}]
            )
        low, high = releves.bucket_range(step, start, end)
        if (high - low) // step > releves.MAX_BUCKETS:
            raise releves.PasInvalide(
                f"This range holds more than {releves.MAX_BUCKETS} steps of {pas}: choose a larger pas or a "
                "shorter range.",
                errors=[{"field": "pas", "message": "too many buckets for the range"}],
            )
        from_rollups = step % releves.HEURE == timedelta(0)
        if not from_rollups:
            held = await repo.count_in_range(connection, compteur_id=compteur_id, depuis=low, jusqu_a=high)
            if held > releves.MAX_RAW_ROWS:
                raise releves.PasInvalide(
                    f"This range holds {held} readings, more than the {releves.MAX_RAW_ROWS} a step shorter than "
                    "an hour may read: choose a pas of whole hours (1h, 1d...) or a shorter range.",
                    errors=[{"field": "pas", "message": "too many readings for a step under an hour"}],
                )
        rows = await repo.buckets(
            connection,
            compteur_id=compteur_id,
            pas=step,
            origine=releves.ORIGINE,
            depuis=low,
            jusqu_a=high,
            from_rollups=from_rollups,
        )
    return Response(dump_rows([dict(r) for r in rows]), media_type=JSON_MEDIA_TYPE)
