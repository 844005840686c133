"""The caller's notification list (one compiled statement for the page and its total and one for the page's
deliveries, on the asyncpg connection, rows written by orjson) answers byte for byte what the previous
implementation answered: ORM entities with their deliveries (`selectinload`), `NotificationOut.model_validate`
(a delivery shows no next attempt once done), `jsonable_encoder`. Compared on awkward rows for filters,
sorts and pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from mif_common.pagination import PageParams, fetch_page, order_by
from mif_notifications import service
from mif_notifications.api import _SORT
from mif_notifications.messages import Message
from mif_notifications.models import Livraison, Notification, TypeNotification
from mif_notifications.schemas import NotificationOut

ALICE = 811
AWKWARD = 'Tab\tquote" back\\slash é 😀 \u2028'
QUERIES = [
    "",
    "limit=3",
    "limit=2&offset=3",
    "sort=date_envoi",
    "sort=-lue,type&limit=4",
    "sort=date_lecture",
    "lue=false",
    "lue=true&sort=id",
    "type=retard",
    "type=affectation&lue=false",
    "offset=50",
]


async def old_answer(session: AsyncSession, user_id: int, query_string: str) -> tuple[bytes, int]:
    """The previous implementation: ORM rows, deliveries loaded with them, the model, `jsonable_encoder`."""
    params = dict(parse_qsl(query_string))
    query = (
        sa.select(Notification).where(Notification.user_id == user_id).options(selectinload(Notification.livraisons))
    )
    if "lue" in params:
        query = query.where(Notification.lue.is_(params["lue"] == "true"))
    if "type" in params:
        query = query.where(Notification.type == params["type"])
    page = PageParams(
        limit=int(params.get("limit", 500)), offset=int(params.get("offset", 0)), sort=params.get("sort"), q=None
    )
    query = query.order_by(*order_by(page.sort, _SORT, default=[Notification.id.desc()]))
    rows, total = await fetch_page(session, query, page)
    return bytes(JSONResponse(jsonable_encoder([NotificationOut.model_validate(n) for n in rows])).body), total


async def test_the_list_answers_what_the_previous_implementation_did(
    client: httpx.AsyncClient, db_session: AsyncSession, auth_headers: Callable[..., dict[str, str]]
) -> None:
    ids: list[int] = []
    for n, kind in enumerate([TypeNotification.retard, TypeNotification.affectation, TypeNotification.information] * 3):
        message = Message(kind, f"Titre {n} {AWKWARD}", f"Contenu {n}\n{AWKWARD}", n if n % 2 else None)
        ids += await service.notify(db_session, user_ids=[ALICE], message=message, origin=service.Origin())
    base = datetime(2026, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)
    for n, notification_id in enumerate(ids):
        read = n % 3 == 0
        await db_session.execute(
            sa.update(Notification)
            .where(Notification.id == notification_id)
            .values(
                lue=read,
                date_lecture=base + timedelta(hours=n) if read else None,
                date_envoi=base.replace(microsecond=0) if n == 4 else base - timedelta(minutes=n, microseconds=n),
            )
        )
    # Deliveries in every state (the service may have made some already): pending (its next attempt shown),
    # sent and failed (no next attempt), several per notification, in id order.
    await db_session.execute(sa.delete(Livraison).where(Livraison.notification_id.in_(ids)))
    for n, notification_id in enumerate(ids[:6]):
        for canal, statut in [("email", "pending"), ("log", "sent"), ("sms", "failed")][: 1 + n % 3]:
            db_session.add(
                Livraison(
                    notification_id=notification_id,
                    canal=canal,
                    statut=statut,
                    attempts=n,
                    next_attempt_at=base + timedelta(seconds=n),
                    last_error=AWKWARD if statut == "failed" else None,
                    sent_at=base.replace(microsecond=0) if statut == "sent" else None,
                )
            )
    await db_session.commit()
    db_session.expire_all()

    headers = auth_headers("technicien", user_id=ALICE)
    differences = []
    for query in QUERIES:
        response = await client.get(f"/api/v1/notifications/user/me?{query}", headers=headers)
        assert response.status_code == 200, response.text
        body, total = await old_answer(db_session, ALICE, query)
        if response.content != body or response.headers["x-total-count"] != str(total):
            differences.append(f"?{query}: {response.content!r}\n  != {body!r}")
    assert not differences, "\n".join(differences)
    everything = (await client.get("/api/v1/notifications", headers=headers)).json()
    deliveries = [d for n in everything for d in n["livraisons"]]
    assert {d["statut"] for d in deliveries} == {"pending", "sent", "failed"}
    assert all((d["prochaine_tentative"] is None) == (d["statut"] != "pending") for d in deliveries)
