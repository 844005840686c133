"""HTTP routes of the workflow: `PATCH /{id}/statut` (the frontend's move towards a statut) and the
explicit actions `POST /{id}/{action}`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.db import Session
from mif_common.params import MAX_ID, EntityId
from mif_interventions import service, transitions
from mif_interventions.api import AuteurDep, IfMatch, PlanningDep, _answer
from mif_interventions.dispatch import PlanningClient
from mif_interventions.models import Statut
from mif_interventions.schemas import ActionBody, AffecterBody, CloturerBody, InterventionOut
from mif_interventions.workflow import Action

transitions_router = APIRouter(prefix="/api/v1/interventions", tags=["interventions"])


@transitions_router.patch(
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


@transitions_router.post(
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


@transitions_router.post(
    "/{intervention_id}/desaffecter", response_model=InterventionOut, summary="Remove the technician: responsable"
)
async def desaffecter(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.desaffecter, auteur, if_match, body)


@transitions_router.post(
    "/{intervention_id}/demarrer",
    response_model=InterventionOut,
    summary="Start work (affectee → en_cours): the assigned technician or a responsable",
)
async def demarrer(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.demarrer, auteur, if_match, body)


@transitions_router.post(
    "/{intervention_id}/suspendre",
    response_model=InterventionOut,
    summary="Pause work with a reason (`remarque`): the assigned technician or a responsable",
)
async def suspendre(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.suspendre, auteur, if_match, body)


@transitions_router.post(
    "/{intervention_id}/reprendre",
    response_model=InterventionOut,
    summary="Resume work (en_attente → en_cours): the assigned technician or a responsable",
)
async def reprendre(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.reprendre, auteur, if_match, body)


@transitions_router.post(
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


@transitions_router.post(
    "/{intervention_id}/annuler",
    response_model=InterventionOut,
    summary="Cancel with a reason (`remarque`): responsable; technician while in progress; client its own open request",
)
async def annuler(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.annuler, auteur, if_match, body)


@transitions_router.post(
    "/{intervention_id}/archiver",
    response_model=InterventionOut,
    summary="Archive a closed or cancelled intervention: responsable",
)
async def archiver(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, if_match: IfMatch = None, body: OptBody = None
) -> Response:
    return await _act(session, intervention_id, Action.archiver, auteur, if_match, body)
