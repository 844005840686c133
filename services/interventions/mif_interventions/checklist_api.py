"""HTTP routes of an intervention's checklist: read it (whoever may see the intervention), add a
planning template to it (managers), fill a step (the assigned technician or a manager, while `en_cours`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from mif_common.auth import Principal, Role, require_roles
from mif_common.db import Session
from mif_common.params import EntityId
from mif_interventions import checklists
from mif_interventions.api import AuteurDep, Editeur
from mif_interventions.schemas import ChecklistAjout, EtapeOut, EtapeRemplie

checklist_router = APIRouter(prefix="/api/v1/interventions", tags=["interventions"])

Responsable = Annotated[Principal, Depends(require_roles(Role.responsable))]


@checklist_router.get(
    "/{intervention_id}/checklist",
    response_model=list[EtapeOut],
    summary="The checklist steps of an intervention, in order (anyone who may see it)",
)
async def checklist(
    intervention_id: EntityId, session: Session, auteur: AuteurDep, response: Response
) -> list[EtapeOut]:
    """All its steps at once (a bare array, `X-Total-Count` as every list; a checklist is short)."""
    steps = await checklists.checklist_of(session, intervention_id=intervention_id, auteur=auteur)
    response.headers["X-Total-Count"] = str(len(steps))
    return steps


@checklist_router.post(
    "/{intervention_id}/checklist",
    response_model=list[EtapeOut],
    status_code=201,
    summary="Add a planning checklist template to an intervention (its steps follow the existing ones)",
)
async def ajouter_checklist(
    intervention_id: EntityId, body: ChecklistAjout, session: Session, auteur: AuteurDep, manager: Responsable
) -> list[EtapeOut]:
    return await checklists.ajouter_modele(
        session, intervention_id=intervention_id, checklist_id=body.checklist_id, auteur=auteur
    )


@checklist_router.put(
    "/{intervention_id}/checklist/etapes/{etape_id}",
    response_model=EtapeOut,
    summary="Fill a checklist step (the assigned technician or a manager, while the intervention is en_cours)",
)
async def remplir_etape(
    intervention_id: EntityId,
    etape_id: EntityId,
    body: EtapeRemplie,
    session: Session,
    auteur: AuteurDep,
    editeur: Editeur,
) -> EtapeOut:
    return await checklists.remplir_etape(
        session, intervention_id=intervention_id, etape_id=etape_id, body=body, auteur=auteur
    )
