"""HTTP routes of the interventions service: parse, call the service, shape the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from mif_common.auth import CurrentPrincipal, Principal, Role, require_roles
from mif_common.datetimes import DateTimeIn
from mif_common.db import Session
from mif_common.errors import Unprocessable
from mif_common.json_bodies import dump_models, dump_models_as_pydantic, dump_rows
from mif_common.listing import ReadConnections
from mif_common.pagination import PageParams, Sortable, fetch_page, json_page, order_by, page_params
from mif_common.params import MAX_ID, EntityId
from mif_common.request_context import client_ip
from mif_interventions import comments, creation, dashboard, editing, owners, service, transitions
from mif_interventions import repository as repo
from mif_interventions.dashboard_schemas import DashboardKpis, DashboardStats
from mif_interventions.dispatch import PlanningClient
from mif_interventions.lateness import is_late
from mif_interventions.models import (
    PRIORITE_ALIASES,
    Commentaire,
    Historique,
    Intervention,
    Priorite,
    Statut,
    TypeIntervention,
)
from mif_interventions.repository import Filtres
from mif_interventions.schemas import (
    ActionBody,
    AffecterBody,
    CloturerBody,
    CommentaireCreate,
    CommentaireOut,
    HistoriqueOut,
    InterventionCreate,
    InterventionOut,
    InterventionUpdate,
)
from mif_interventions.workflow import Action

interventions_router = APIRouter(prefix="/api/v1/interventions", tags=["interventions"])
filters_router = APIRouter(prefix="/api/v1/filters", tags=["interventions"])
dashboard_router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])

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


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for reads, outside any transaction (AUTOCOMMIT): a list is one statement (the page and
    its total together), so it needs none, and the hot paths save the BEGIN and COMMIT round trips."""
    engine: AsyncEngine = request.app.state.engine
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=connection, info={"source": "interventions"}) as session:
            yield session


ReadSession = Annotated[AsyncSession, Depends(get_read_session)]

# Lists open an AUTOCOMMIT connection without a session and run their statement on the asyncpg
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
    return item


async def _answer(
    session: AsyncSession, intervention_id: int, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    row = await repo.row_of(session, intervention_id)
    assert row is not None
    body = _json(_present(row, service.now()))
    return Response(
        body,
        status_code=status_code,
        media_type="application/json",
        headers={"ETag": service.etag(row), **(headers or {})},
    )


# --- list and search ------------------------------------------------------------------------------

# `priorite` sorts by severity (urgente first when ascending), not alphabetically.
_PRIORITE_RANK = sa.case({p.value: rank for rank, p in enumerate(Priorite)}, value=Intervention.priorite)
_SORT: dict[str, Sortable] = {
    "id": Intervention.id,
    "titre": sa.func.lower(Intervention.titre),
    "statut": Intervention.statut,
    "priorite": _PRIORITE_RANK,
    "type": Intervention.type,
    "urgence": Intervention.urgence,
    "date_creation": Intervention.date_creation,
    "date_modification": Intervention.date_modification,
    "date_limite": Intervention.date_limite,
    "date_affectation": Intervention.date_affectation,
    "date_debut_travaux": Intervention.date_debut_travaux,
    "date_cloture": Intervention.date_cloture,
    "technicien_id": Intervention.technicien_id,
    "equipement_id": Intervention.equipement_id,
    "client_id": Intervention.client_id,
}


def _values(
    raw: Sequence[str] | None, enum: type[StrEnum], field: str, aliases: Mapping[str, StrEnum] | None = None
) -> list[str]:
    """Repeated and/or comma-separated enum values (`statut=ouverte,affectee&statut=en_cours`)."""
    allowed = [e.value for e in enum]
    out: list[str] = []
    for chunk in raw or ():
        for part in chunk.split(","):
            value = part.strip()
            if not value:
                continue
            if aliases and value.lower() in aliases:
                value = aliases[value.lower()].value
            if value not in allowed:
                raise Unprocessable(
                    f"Unknown {field} '{value[:40]}'. Allowed: {', '.join(allowed)}.",
                    errors=[{"field": field, "message": f"must be one of {', '.join(allowed)}"}],
                )
            out.append(value)
    return out


_Ref = Annotated[int | None, Query(gt=0, le=MAX_ID)]
_Many = Annotated[list[str] | None, Query(max_length=200, description="Repeat or comma-separate for several.")]


async def filtres(  # async: FastAPI runs a plain `def` dependency in a worker thread
    statut: _Many = None,
    priorite: _Many = None,
    type_: Annotated[list[str] | None, Query(alias="type", max_length=200, description="Repeat for several.")] = None,
    urgence: bool | None = None,
    technicien_id: _Ref = None,
    equipement_id: _Ref = None,
    client_id: _Ref = None,
    planning_id: _Ref = None,
    en_retard: Annotated[bool | None, Query(description="Past date_limite and still open.")] = None,
    date_creation_min: DateTimeIn | None = None,
    date_creation_max: DateTimeIn | None = None,
    date_limite_min: DateTimeIn | None = None,
    date_limite_max: DateTimeIn | None = None,
) -> Filtres:
    """The list filters (DOMAIN.md §8); `q` comes with the paging parameters."""
    return Filtres(
        statut=_values(statut, Statut, "statut"),
        priorite=_values(priorite, Priorite, "priorite", PRIORITE_ALIASES),
        type=_values(type_, TypeIntervention, "type"),
        urgence=urgence,
        technicien_id=technicien_id,
        equipement_id=equipement_id,
        client_id=client_id,
        planning_id=planning_id,
        en_retard=en_retard,
        date_creation_min=date_creation_min,
        date_creation_max=date_creation_max,
        date_limite_min=date_limite_min,
        date_limite_max=date_limite_max,
    )


FiltresDep = Annotated[Filtres, Depends(filtres)]

_LIST_DESCRIPTION = (
    "A bare JSON array with `X-Total-Count` and `Link` headers. Filters combine with AND; `statut`, "
    "`priorite` and `type` take several values. `q` is a French full-text search on the title and the "
    "description (every word, as a prefix). `sort`: "
    + ", ".join(sorted(_SORT))
    + " (`-` for descending; default: newest first). A technician sees the interventions assigned to "
    "them, a client user its organisation's."
)


async def _list(
    request: Request, connection: AsyncConnection, principal: Principal, params: PageParams, criteria: Filtres
) -> Response:
    scope = await service.visibilite(connection, principal)
    at = service.now()
    rows, total = await repo.page_and_total(
        connection,
        replace(criteria, q=params.q, now=at),
        scope,
        sort=params.sort,
        order=lambda: order_by(params.sort, _SORT, default=[Intervention.id.desc()]),
        limit=params.limit,
        offset=params.offset,
    )
    return json_page(request, _json([_present(r, at) for r in rows]), total=total, params=params)


@interventions_router.get(
    "", response_model=list[InterventionOut], summary="List and search interventions", description=_LIST_DESCRIPTION
)
async def list_interventions(
    request: Request, connections: ReadConnections, principal: CurrentPrincipal, params: Page, criteria: FiltresDep
) -> Response:
    async with connections() as connection:
        return await _list(request, connection, principal, params, criteria)


@filters_router.get(
    "/interventions",
    response_model=list[InterventionOut],
    summary="Filter interventions (same as GET /interventions, kept for existing clients)",
    description=_LIST_DESCRIPTION,
)
async def filter_interventions(
    request: Request, connections: ReadConnections, principal: CurrentPrincipal, params: Page, criteria: FiltresDep
) -> Response:
    async with connections() as connection:
        return await _list(request, connection, principal, params, criteria)


# --- one intervention ---------------------------------------------------------------------------------


@interventions_router.post(
    "",
    response_model=InterventionOut,
    status_code=201,
    summary="Create an intervention (responsable; a client user on its own equipment)",
    responses={
        422: {"description": "Unknown equipment or technician, inconsistent fields, reused Idempotency-Key"},
        503: {"description": "The equipment is not in the local replica and assets did not answer"},
    },
)
async def create_intervention(
    body: InterventionCreate,
    request: Request,
    session: Session,
    _: Createur,
    auteur: AuteurDep,
    assets: AssetsDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    intervention, replayed = await creation.create_intervention(
        session,
        data=body,
        auteur=auteur,
        settings=request.app.state.settings,
        assets=assets,
        idempotency_key=idempotency_key,
    )
    headers = {"Location": f"{interventions_router.prefix}/{intervention.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return await _answer(session, intervention.id, status_code=201, headers=headers)


@interventions_router.get(
    "/{intervention_id}", response_model=InterventionOut, summary="One intervention (with its ETag)"
)
async def get_intervention(intervention_id: EntityId, session: ReadSession, principal: CurrentPrincipal) -> Response:
    intervention = await service.get_intervention(session, intervention_id=intervention_id, principal=principal)
    return await _answer(session, intervention.id)


@interventions_router.patch(
    "/{intervention_id}",
    response_model=InterventionOut,
    summary="Edit fields while not closed (responsable; the assigned technician: report fields); honours If-Match",
)
async def update_intervention(
    intervention_id: EntityId,
    body: InterventionUpdate,
    request: Request,
    session: Session,
    _: Editeur,
    auteur: AuteurDep,
    assets: AssetsDep,
    if_match: IfMatch = None,
) -> Response:
    intervention = await editing.update_intervention(
        session,
        intervention_id=intervention_id,
        data=body,
        auteur=auteur,
        if_match=if_match,
        settings=request.app.state.settings,
        assets=assets,
    )
    return await _answer(session, intervention.id)


@interventions_router.patch(
    "/{intervention_id}/statut",
    response_model=InterventionOut,
    summary="Change the statut (query parameters, for existing clients): the workflow move to that statut",
)
async def change_statut(
    intervention_id: EntityId,
    session: Session,
    auteur: AuteurDep,
    planning: PlanningDep,
    statut: Annotated[Statut, Query(description="The target statut.")],
    remarque: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="Why (optional for every move here; the history says when none was given); "
            "the report on closing.",
        ),
    ] = None,
    technicien_id: Annotated[
        int | None,
        Query(
            gt=0,
            le=MAX_ID,
            description="Who to assign (statut=affectee); without it, the technician planning recommends.",
        ),
    ] = None,
    if_match: IfMatch = None,
) -> Response:
    intervention = await transitions.change_statut(
        session,
        intervention_id=intervention_id,
        statut=statut,
        auteur=auteur,
        remarque=remarque.strip() if remarque and remarque.strip() else None,
        technicien_id=technicien_id,
        if_match=if_match,
        planning=planning,
    )
    return await _answer(session, intervention.id)


# --- explicit workflow actions -----------------------------------------------------------------------------


async def _act(
    session: AsyncSession,
    intervention_id: int,
    action: Action,
    auteur: service.Auteur,
    if_match: str | None,
    body: ActionBody | None,
    planning: PlanningClient | None = None,
) -> Response:
    extra: dict[str, Any] = {}
    if isinstance(body, AffecterBody):
        extra["technicien_id"] = body.technicien_id
    if isinstance(body, CloturerBody):
        extra.update(rapport=body.rapport, duree_reelle=body.duree_reelle, cout_reel=body.cout_reel)
    intervention = await transitions.apply_action(
        session,
        intervention_id=intervention_id,
        action=action,
        auteur=auteur,
        if_match=if_match,
        remarque=body.remarque if body is not None else None,
        planning=planning,
        **extra,
    )
    return await _answer(session, intervention.id)


OptBody = Annotated[ActionBody | None, Body()]


@interventions_router.post(
    "/{intervention_id}/affecter",
    response_model=InterventionOut,
    summary="Assign (from ouverte) or reassign (affectee) a technician: responsable; without one, the "
    "technician planning recommends (409 when nobody can take work now)",
)
async def affecter(
    intervention_id: EntityId,
    session: Session,
    auteur: AuteurDep,
    planning: PlanningDep,
    if_match: IfMatch = None,
    body: Annotated[AffecterBody | None, Body()] = None,
) -> Response:
    return await _act(session, intervention_id, Action.affecter, auteur, if_match, body or AffecterBody(), planning)


@interventions_router.post(
    "/{intervention_id}/desaffecter", response_model=InterventionOut, summary="Remove the technician: responsable"
)
async def desaffecter(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.desaffecter, auteur, if_match, body)


@interventions_router.post(
    "/{intervention_id}/demarrer",
    response_model=InterventionOut,
    summary="Start work (affectee → en_cours): the assigned technician or a responsable",
)
async def demarrer(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.demarrer, auteur, if_match, body)


@interventions_router.post(
    "/{intervention_id}/suspendre",
    response_model=InterventionOut,
    summary="Pause work with a reason (`remarque`): the assigned technician or a responsable",
)
async def suspendre(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.suspendre, auteur, if_match, body)


@interventions_router.post(
    "/{intervention_id}/reprendre",
    response_model=InterventionOut,
    summary="Resume work (en_attente → en_cours): the assigned technician or a responsable",
)
async def reprendre(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.reprendre, auteur, if_match, body)


@interventions_router.post(
    "/{intervention_id}/cloturer",
    response_model=InterventionOut,
    summary="Close with `rapport`, `duree_reelle` (minutes), `cout_reel` (centimes): technician or responsable",
)
async def cloturer(
    intervention_id: EntityId,
    session: Session,
    auteur: AuteurDep,
    if_match: IfMatch = None,
    body: Annotated[CloturerBody | None, Body()] = None,
) -> Response:
    return await _act(session, intervention_id, Action.cloturer, auteur, if_match, body)


@interventions_router.post(
    "/{intervention_id}/annuler",
    response_model=InterventionOut,
    summary="Cancel with a reason (`remarque`): responsable; technician while in progress; client its own open request",
)
async def annuler(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.annuler, auteur, if_match, body)


@interventions_router.post(
    "/{intervention_id}/archiver",
    response_model=InterventionOut,
    summary="Archive a closed or cancelled intervention: responsable",
)
async def archiver(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.archiver, auteur, if_match, body)


# --- history and comments ------------------------------------------------------------------------------------

_HISTORIQUE_SORT: dict[str, Sortable] = {"id": Historique.id, "horodatage": Historique.horodatage}


@interventions_router.get(
    "/{intervention_id}/historique",
    response_model=list[HistoriqueOut],
    summary="The audit trail of an intervention, oldest first (IP and user agent: managers only)",
)
async def historique(
    intervention_id: EntityId, request: Request, session: Session, principal: CurrentPrincipal, params: Page
) -> Response:
    await service.get_intervention(session, intervention_id=intervention_id, principal=principal)
    query = repo.historique_query(intervention_id).order_by(
        *order_by(params.sort, _HISTORIQUE_SORT, default=[Historique.id])
    )
    rows, total = await fetch_page(session, query, params)
    items = [HistoriqueOut.model_validate(r) for r in rows]
    if not principal.is_manager:
        items = [i.model_copy(update={"ip": None, "user_agent": None}) for i in items]
    return json_page(request, dump_models_as_pydantic(items), total=total, params=params)


@interventions_router.get(
    "/{intervention_id}/commentaires", response_model=list[CommentaireOut], summary="Comments, oldest first"
)
async def commentaires(
    intervention_id: EntityId, request: Request, session: Session, principal: CurrentPrincipal, params: Page
) -> Response:
    await service.get_intervention(session, intervention_id=intervention_id, principal=principal)
    query = repo.commentaires_query(intervention_id).order_by(Commentaire.id)
    rows, total = await fetch_page(session, query, params)
    items = [CommentaireOut.model_validate(r) for r in rows]
    return json_page(request, dump_models(items), total=total, params=params)


@interventions_router.post(
    "/{intervention_id}/commentaires",
    response_model=CommentaireOut,
    status_code=201,
    summary="Comment on an intervention (anyone who may see it)",
)
async def commenter(
    intervention_id: EntityId, body: CommentaireCreate, session: Session, auteur: AuteurDep
) -> CommentaireOut:
    commentaire = await comments.add_commentaire(
        session, intervention_id=intervention_id, contenu=body.contenu, auteur=auteur
    )
    return CommentaireOut.model_validate(commentaire)


# --- dashboard ------------------------------------------------------------------------------------------------


@dashboard_router.get(
    "/stats",
    summary="Dashboard figures of the existing frontend (DOMAIN.md §8), over what the caller may see",
    description=(
        "`interventions.ouverte` counts `ouverte` and `affectee` (not started); `terminees` the closed ones "
        "(`date_cloture` set, archived or not); `*_mensuel`: created / closed since the first of this month "
        "(UTC); `taux_resolution` = terminees ÷ (all − cancelled) × 100; `evolution_mensuelle`: interventions "
        "created per month, the last six months; `priorites`: all visible interventions per priority; "
        "`equipements` and `utilisateurs` come from the replicas of assets and auth."
    ),
    response_model=DashboardStats,
)
async def stats(session: ReadSession, principal: CurrentPrincipal) -> DashboardStats:
    scope = await service.visibilite(session, principal)
    return DashboardStats.model_validate(
        await dashboard.stats(session, scope=scope, principal=principal, at=service.now())
    )


@dashboard_router.get(
    "/kpis",
    summary="Maintenance KPIs over a period: backlog, late, MTTR, resolution time, SLA compliance",
    description=(
        "Over what the caller may see; period `du` ≤ date_cloture < `au` (default: the last 30 days).\n\n"
        "- `backlog`: open interventions now (ouverte, affectee, en_cours, en_attente) by statut and priority.\n"
        "- `en_retard`: open interventions whose `date_limite` has passed.\n"
        "- `mttr.minutes` = mean(date_cloture − date_debut_travaux) over interventions closed in the period "
        "(repair time; every closed intervention was started), per type too.\n"
        "- `delai_resolution.minutes` = mean(date_cloture − date_creation), same population (lead time).\n"
        "- `sla.par_priorite[p].taux` = closed by their date_limite ÷ closed in the period with a date_limite "
        "× 100 (null without any); `programmee` has no SLA.\n"
        "See docs/kpis.md."
    ),
    response_model=DashboardKpis,
)
async def kpis(
    session: ReadSession,
    principal: CurrentPrincipal,
    du: Annotated[DateTimeIn | None, Query(description="Period start (default: 30 days before `au`).")] = None,
    au: Annotated[DateTimeIn | None, Query(description="Period end, excluded (default: now).")] = None,
) -> DashboardKpis:
    at = service.now()
    default_du, default_au = dashboard.default_period(au or at)
    start, end = du or default_du, au or default_au
    if start >= end:
        raise Unprocessable(
            "The period is empty: `du` must be before `au`.", errors=[{"field": "du", "message": "must be before au"}]
        )
    scope = await service.visibilite(session, principal)
    return DashboardKpis.model_validate(await dashboard.kpis(session, scope=scope, du=start, au=end, at=at))
