"""What the planning service's routers share: who may call, paging, settings and the owners' clients.

The routes are in `techniciens_api` (`/api/v1/techniciens`: technicians, competences, calendar feed
secrets) and `plans_api` (`/api/v1/planning`: plans, their history, the schedule and its feed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from mif_common.auth import Principal, Role, require_roles
from mif_common.pagination import PageParams, page_params
from mif_common.params import MAX_ID
from mif_planning import owners
from mif_planning.config import PlanningSettings

# Managers and technicians; client users are refused (they see no technician data, no planning).
Staff = Annotated[Principal, Depends(require_roles(Role.responsable, Role.technicien))]
Page = Annotated[PageParams, Depends(page_params)]
OptId = Annotated[int | None, Query(gt=0, le=MAX_ID)]


def settings_of(request: Request) -> PlanningSettings:
    settings: PlanningSettings = request.app.state.settings
    return settings


# The owners, asked as the caller about a user or an equipment missing from the replicas.
Auth = Annotated[owners.AuthUsers, Depends(owners.AuthUsers.for_request)]
Assets = Annotated[owners.AssetsEquipements, Depends(owners.AssetsEquipements.for_request)]
