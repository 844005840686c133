"""HTTP routes of `/api/v1/planning/checklists`: checklist templates (managers write, managers and
technicians read). Listed before the plans' router, so `/checklists` is never taken for a plan id."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response

from mif_common.auth import Manager
from mif_common.db import Session
from mif_common.pagination import Sortable, fetch_page, order_by, page_response
from mif_common.params import EntityId
from mif_planning import checklists
from mif_planning.api import Page, Staff
from mif_planning.checklists_schemas import ChecklistIn, ChecklistOut
from mif_planning.models import ChecklistModele

checklists_router = APIRouter(prefix="/api/v1/planning/checklists", tags=["planning"])

_SORT: dict[str, Sortable] = {
    "id": ChecklistModele.id,
    "nom": ChecklistModele.nom,
    "date_modification": ChecklistModele.date_modification,
}


@checklists_router.get("", response_model=list[ChecklistOut], summary="List checklist templates")
async def list_checklists(request: Request, session: Session, principal: Staff, params: Page) -> Response:
    query = sa.select(ChecklistModele).order_by(*order_by(params.sort, _SORT, default=[ChecklistModele.id]))
    rows, total = await fetch_page(session, query, params)
    return page_response(request, [ChecklistOut.model_validate(r) for r in rows], total=total, params=params)


@checklists_router.post("", response_model=ChecklistOut, status_code=201, summary="Create a checklist template")
async def create_checklist(body: ChecklistIn, session: Session, response: Response, actor: Manager) -> ChecklistOut:
    checklist = await checklists.create_checklist(session, data=body, actor_id=actor.user_id)
    response.headers["Location"] = f"{checklists_router.prefix}/{checklist.id}"
    return ChecklistOut.model_validate(checklist)


@checklists_router.get("/{checklist_id}", response_model=ChecklistOut, summary="One checklist template")
async def get_checklist(checklist_id: EntityId, session: Session, principal: Staff) -> ChecklistOut:
    return ChecklistOut.model_validate(await checklists.get_checklist(session, checklist_id=checklist_id))


@checklists_router.put(
    "/{checklist_id}", response_model=ChecklistOut, summary="Replace a checklist template (its steps too)"
)
async def update_checklist(checklist_id: EntityId, body: ChecklistIn, session: Session, actor: Manager) -> ChecklistOut:
    checklist = await checklists.update_checklist(session, checklist_id=checklist_id, data=body)
    return ChecklistOut.model_validate(checklist)


@checklists_router.delete(
    "/{checklist_id}", status_code=204, summary="Delete a checklist template no plan uses (409 otherwise)"
)
async def delete_checklist(checklist_id: EntityId, session: Session, actor: Manager) -> Response:
    await checklists.delete_checklist(session, checklist_id=checklist_id)
    return Response(status_code=204)
