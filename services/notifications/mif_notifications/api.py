"""HTTP routes of the notifications service: parse, call the service, shape the answer.

Every route is about the caller's own notifications (another user's are "not found"), except the
managers' manual send.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from mif_common.auth import CurrentPrincipal, Manager
from mif_common.auth.tokens import TokenVerifier, bearer_token
from mif_common.db import Session
from mif_common.errors import ServiceUnavailable, Unauthorized
from mif_common.json_bodies import dump_rows
from mif_common.listing import ReadConnections
from mif_common.pagination import PageParams, Sortable, json_page, page_params
from mif_common.params import EntityId
from mif_notifications import repository as repo
from mif_notifications import service
from mif_notifications.config import NotificationsSettings
from mif_notifications.models import Notification, TypeNotification
from mif_notifications.schemas import (
    ManualNotification,
    NotificationOut,
    PreferencesOut,
    PreferencesUpdate,
    ReadAllOut,
    UnreadCount,
)
from mif_notifications.stream import NotificationHub, event_stream

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

Page = Annotated[PageParams, Depends(page_params)]

_SORT: dict[str, Sortable] = {
    "id": Notification.id,
    "date_envoi": Notification.date_envoi,
    "date_lecture": Notification.date_lecture,
    "type": Notification.type,
    "lue": Notification.lue,
}


_NOTIFICATIONS = repo.notifications_list(_SORT)


async def _own_list(
    request: Request,
    connections: ReadConnections,
    principal: CurrentPrincipal,
    params: Page,
    lue: bool | None = None,
    type_: Annotated[TypeNotification | None, Query(alias="type")] = None,
) -> Response:
    terms: dict[str, Any] = {"user_id": principal.user_id}
    if lue is not None:
        terms["lue"] = lue
    if type_ is not None:
        terms["type"] = type_.value
    async with connections() as connection:
        rows, total = await _NOTIFICATIONS.page_and_total(
            connection, terms=terms, sort=params.sort, limit=params.limit, offset=params.offset
        )
        rows = await repo.with_deliveries(connection, rows)
    return json_page(request, dump_rows(rows), total=total, params=params)


router.add_api_route(
    "",
    _own_list,
    methods=["GET"],
    response_model=list[NotificationOut],
    summary="The caller's notifications, newest first (filters: lue, type)",
)
router.add_api_route(
    "/user/me",
    _own_list,
    methods=["GET"],
    response_model=list[NotificationOut],
    summary="The caller's notifications (the path existing clients use)",
)


@router.get("/unread-count", response_model=UnreadCount, summary="How many of the caller's notifications are unread")
async def unread_count(session: Session, principal: CurrentPrincipal) -> UnreadCount:
    return UnreadCount(count=await service.unread_count(session, principal=principal))


@router.get(
    "/stream",
    summary="Live stream of the caller's new notifications (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "`id:` notification id, `data:` JSON"}},
)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    """Replays what came after `Last-Event-ID` (a notification id), then sends new notifications as they
    are created, with a comment line every ~15 s. Ends when the access token expires: reconnect with a
    fresh token and `Last-Event-ID`."""
    hub: NotificationHub | None = getattr(request.app.state, "hub", None)
    if hub is None or hub.stopping:
        raise ServiceUnavailable("The live stream is not available on this instance; retry shortly.")
    settings: NotificationsSettings = request.app.state.settings
    verifier: TokenVerifier = request.app.state.token_verifier
    token = bearer_token(request.headers.get("authorization"))
    if token is None:  # pragma: no cover - the principal dependency refused it already
        raise Unauthorized()
    expires_at = float((await verifier.claims(token))["exp"])
    last_id = int(last_event_id) if last_event_id and last_event_id.strip().isdigit() else None
    body = event_stream(
        hub=hub,
        sessionmaker=request.app.state.sessionmaker,
        user_id=principal.user_id,
        last_event_id=last_id,
        expires_at=min(expires_at, time.time() + 24 * 3600),
        heartbeat=settings.sse_heartbeat_seconds,
        batch_size=settings.sse_batch_size,
    )
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/preferences", response_model=PreferencesOut, summary="The caller's channel preferences")
async def get_preferences(session: Session, principal: CurrentPrincipal) -> PreferencesOut:
    return await service.preferences(session, principal=principal)


@router.put("/preferences", response_model=PreferencesOut, summary="Change the caller's channel preferences")
async def put_preferences(body: PreferencesUpdate, session: Session, principal: CurrentPrincipal) -> PreferencesOut:
    return await service.update_preferences(session, principal=principal, data=body)


@router.put("/read-all", response_model=ReadAllOut, summary="Mark all the caller's notifications read")
async def read_all(session: Session, principal: CurrentPrincipal) -> ReadAllOut:
    return ReadAllOut(updated=await service.mark_all_read(session, principal=principal))


@router.post(
    "",
    response_model=list[NotificationOut],
    status_code=201,
    summary="Send a notification to a user or to every active user of a role (managers)",
)
async def send(body: ManualNotification, session: Session, principal: Manager) -> list[NotificationOut]:
    ids = await service.send_manual(session, data=body, sender=principal)
    return [NotificationOut.model_validate(n) for n in await service.notifications_by_ids(session, ids)]


@router.get("/{notification_id}", response_model=NotificationOut, summary="One of the caller's notifications")
async def get_one(notification_id: EntityId, session: Session, principal: CurrentPrincipal) -> NotificationOut:
    notification = await service.get_own(session, notification_id=notification_id, principal=principal)
    return NotificationOut.model_validate(notification)


@router.put("/{notification_id}/read", response_model=NotificationOut, summary="Mark one notification read")
async def read(notification_id: EntityId, session: Session, principal: CurrentPrincipal) -> NotificationOut:
    notification = await service.mark_read(session, notification_id=notification_id, principal=principal)
    return NotificationOut.model_validate(notification)


@router.delete("/{notification_id}", status_code=204, summary="Delete one of the caller's notifications")
async def delete(notification_id: EntityId, session: Session, principal: CurrentPrincipal) -> Response:
    await service.delete_own(session, notification_id=notification_id, principal=principal)
    return Response(status_code=204)
