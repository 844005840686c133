"""HTTP routes of an intervention's history and comments."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from mif_common.auth import CurrentPrincipal
from mif_common.db import Session
from mif_common.json_bodies import dump_models, dump_models_as_pydantic
from mif_common.pagination import Sortable, fetch_page, json_page, order_by
from mif_common.params import EntityId
from mif_interventions import comments, service
from mif_interventions import repository as repo
from mif_interventions.api import AuteurDep, Page
from mif_interventions.models import Commentaire, Historique
from mif_interventions.schemas import CommentaireCreate, CommentaireOut, HistoriqueOut

comments_router = APIRouter(prefix="/api/v1/interventions", tags=["interventions"])


_HISTORIQUE_SORT: dict[str, Sortable] = {"id": Historique.id, "horodatage": Historique.horodatage}


@comments_router.get(
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


@comments_router.get(
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


@comments_router.post(
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
