"""The HTTP API: a user's own notifications (list, one, read, read all, delete, unread count), the
managers' manual send, channel preferences; another user's notification is not found."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import user_data
from mif_notifications import service
from mif_notifications.messages import Message
from mif_notifications.models import TypeNotification

Headers = dict[str, str]
MakeUser = Callable[..., Awaitable[dict[str, Any]]]
Deliver = Callable[..., Awaitable[bool]]
Outbox = Callable[[str], Awaitable[list[dict[str, Any]]]]

ALICE, BOB, MANAGER = 801, 802, 803
API = "/api/v1/notifications"


@pytest.fixture
def alice(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("technicien", user_id=ALICE)


@pytest.fixture
def bob(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("client", user_id=BOB, client_id=4)


@pytest.fixture
def manager(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("responsable", user_id=MANAGER)


async def give(session: AsyncSession, user_id: int, count: int = 1, **kw: Any) -> list[int]:
    """`count` notifications for `user_id` (as an event would create them); their ids, oldest first."""
    ids: list[int] = []
    for n in range(count):
        message = Message(kw.get("type", TypeNotification.information), f"Message {n}", f"Contenu {n}", kw.get("iid"))
        ids += await service.notify(session, user_ids=[user_id], message=message, origin=service.Origin())
    await session.commit()  # a savepoint: a later request's rollback keeps it
    return ids


async def test_own_list_newest_first_with_paging_headers(
    client: httpx.AsyncClient, db_session: AsyncSession, alice: Headers
) -> None:
    ids = await give(db_session, ALICE, 3)
    await give(db_session, BOB, 2)
    for path in (f"{API}/user/me", API, f"{API}/"):
        response = await client.get(path, headers=alice)
        assert response.status_code == 200
        body = response.json()
        assert [n["id"] for n in body] == ids[::-1]
        assert response.headers["x-total-count"] == "3"
    page = await client.get(f"{API}/user/me?limit=2&offset=1", headers=alice)
    assert [n["id"] for n in page.json()] == ids[1::-1]
    assert 'rel="prev"' in page.headers["link"]
    first = page.json()[0]
    assert set(first) == {
        "id",
        "user_id",
        "type",
        "canal",
        "titre",
        "contenu",
        "intervention_id",
        "lue",
        "date_lecture",
        "date_envoi",
        "livraisons",
    }
    assert first["user_id"] == ALICE and first["canal"] == "email" and first["lue"] is False
    assert first["livraisons"] == [
        {
            "canal": "email",
            "statut": "pending",
            "tentatives": 0,
            "derniere_erreur": None,
            "prochaine_tentative": first["livraisons"][0]["prochaine_tentative"],
            "date_envoi": None,
        }
    ]


async def test_filters_and_sort(client: httpx.AsyncClient, db_session: AsyncSession, alice: Headers) -> None:
    info = await give(db_session, ALICE, 2)
    late = await give(db_session, ALICE, 1, type=TypeNotification.retard)
    await client.put(f"{API}/{info[0]}/read", headers=alice)
    unread = await client.get(f"{API}?lue=false", headers=alice)
    assert [n["id"] for n in unread.json()] == [late[0], info[1]]
    read = await client.get(f"{API}/user/me?lue=true", headers=alice)
    assert [n["id"] for n in read.json()] == [info[0]]
    only_late = await client.get(f"{API}?type=retard", headers=alice)
    assert [n["id"] for n in only_late.json()] == late
    oldest_first = await client.get(f"{API}?sort=id", headers=alice)
    assert [n["id"] for n in oldest_first.json()] == [*info, *late]
    bad = await client.get(f"{API}?sort=secret", headers=alice)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"{API}?type=urgent", headers=alice)).status_code == 422


async def test_read_is_persisted_with_its_date_and_idempotent(
    client: httpx.AsyncClient, db_session: AsyncSession, alice: Headers
) -> None:
    [nid] = await give(db_session, ALICE)
    response = await client.put(f"{API}/{nid}/read", headers=alice)
    assert response.status_code == 200
    first = response.json()
    assert first["lue"] is True and first["date_lecture"] is not None
    again = await client.put(f"{API}/{nid}/read/", headers=alice)
    assert again.json()["date_lecture"] == first["date_lecture"]
    query = text("SELECT lue, date_lecture FROM notification WHERE id = :i")
    stored = (await db_session.execute(query, {"i": nid})).one()
    assert stored.lue is True and stored.date_lecture is not None
    assert (await client.get(f"{API}/{nid}", headers=alice)).json()["lue"] is True


async def test_unread_count_and_read_all(client: httpx.AsyncClient, db_session: AsyncSession, alice: Headers) -> None:
    await give(db_session, ALICE, 3)
    await give(db_session, BOB, 2)
    assert (await client.get(f"{API}/unread-count", headers=alice)).json() == {"count": 3}
    response = await client.put(f"{API}/read-all", headers=alice)
    assert response.json() == {"updated": 3}
    assert (await client.get(f"{API}/unread-count", headers=alice)).json() == {"count": 0}
    assert (await client.put(f"{API}/read-all", headers=alice)).json() == {"updated": 0}
    assert await db_session.scalar(text("SELECT count(*) FROM notification WHERE user_id = :u AND NOT lue"), {"u": BOB})


async def test_delete_own(client: httpx.AsyncClient, db_session: AsyncSession, alice: Headers) -> None:
    [nid] = await give(db_session, ALICE)
    assert (await client.delete(f"{API}/{nid}", headers=alice)).status_code == 204
    assert (await client.get(f"{API}/{nid}", headers=alice)).status_code == 404
    assert (await client.delete(f"{API}/{nid}", headers=alice)).status_code == 404
    assert await db_session.scalar(text("SELECT count(*) FROM delivery WHERE notification_id = :i"), {"i": nid}) == 0


async def test_another_users_notification_is_not_found(
    client: httpx.AsyncClient, db_session: AsyncSession, alice: Headers, bob: Headers, manager: Headers
) -> None:
    [nid] = await give(db_session, ALICE)
    for headers in (bob, manager):  # managers included: a notification is its recipient's alone
        for method, path in (("GET", f"{API}/{nid}"), ("PUT", f"{API}/{nid}/read"), ("DELETE", f"{API}/{nid}")):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 404, (method, path)
            assert response.json()["detail"] == f"No notification with id {nid}."
    stored = (await db_session.execute(text("SELECT lue FROM notification WHERE id = :i"), {"i": nid})).one()
    assert stored.lue is False


@pytest.mark.parametrize(("path", "status"), [(f"{API}/0", 422), (f"{API}/99999999999999999999", 422)])
async def test_bad_ids_are_422(client: httpx.AsyncClient, alice: Headers, path: str, status: int) -> None:
    assert (await client.get(path, headers=alice)).status_code == status


async def test_a_token_is_required(client: httpx.AsyncClient) -> None:
    for path in (API, f"{API}/user/me", f"{API}/unread-count", f"{API}/stream", f"{API}/preferences"):
        assert (await client.get(path)).status_code == 401


# --- manual send ------------------------------------------------------------------------------------


async def test_a_manager_sends_to_one_user(
    client: httpx.AsyncClient, manager: Headers, alice: Headers, deliver: Deliver
) -> None:
    await deliver("auth.user.created.v1", user_data(ALICE))
    body = {"user_id": ALICE, "titre": "Réunion sécurité", "contenu": "Demain 9h, atelier B.", "intervention_id": 5}
    response = await client.post(API, json=body, headers=manager)
    assert response.status_code == 201, response.text
    [sent] = response.json()
    assert sent["user_id"] == ALICE and sent["type"] == "information" and sent["intervention_id"] == 5
    mine = (await client.get(f"{API}?sort=-id&limit=1", headers=alice)).json()
    assert mine[0]["id"] == sent["id"] and mine[0]["titre"] == "Réunion sécurité"


async def test_a_manager_sends_to_a_role(client: httpx.AsyncClient, manager: Headers, deliver: Deliver) -> None:
    for uid, role in ((811, "technicien"), (812, "technicien"), (813, "client"), (814, "technicien")):
        await deliver("auth.user.created.v1", user_data(uid, role, client_id=1 if role == "client" else None))
    await deliver("auth.user.deactivated.v1", user_data(814, "technicien", is_active=False))
    body = {"role": "technicien", "titre": "Formation", "contenu": "Formation habilitation lundi.", "type": "rappel"}
    response = await client.post(API, json=body, headers=manager)
    assert response.status_code == 201
    assert sorted(n["user_id"] for n in response.json()) == [811, 812]
    assert {n["type"] for n in response.json()} == {"rappel"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"titre": "t", "contenu": "c"}, "user_id"),
        ({"user_id": ALICE, "role": "technicien", "titre": "t", "contenu": "c"}, "user_id"),
        ({"user_id": 424242, "titre": "t", "contenu": "c"}, "user_id"),
        ({"user_id": 815, "titre": "t", "contenu": "c"}, "user_id"),
        ({"role": "admin", "titre": "t", "contenu": "c"}, "role"),
        ({"user_id": ALICE, "titre": "t", "contenu": "x" * 1001}, "contenu"),
        ({"user_id": ALICE, "titre": "", "contenu": "c"}, "titre"),
        ({"user_id": ALICE, "titre": "t", "contenu": "c", "type": "urgent"}, "type"),
        ({"user_id": ALICE, "titre": "t", "contenu": "c", "canal": "email"}, "canal"),
    ],
)
async def test_manual_send_refuses_bad_recipients_and_bodies(
    client: httpx.AsyncClient, manager: Headers, deliver: Deliver, body: dict[str, Any], field: str
) -> None:
    await deliver("auth.user.created.v1", user_data(ALICE))
    await deliver("auth.user.created.v1", user_data(815))
    await deliver("auth.user.deactivated.v1", user_data(815, is_active=False))
    response = await client.post(API, json=body, headers=manager)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_only_managers_send(client: httpx.AsyncClient, alice: Headers, bob: Headers, deliver: Deliver) -> None:
    await deliver("auth.user.created.v1", user_data(ALICE))
    for headers in (alice, bob):
        response = await client.post(API, json={"user_id": ALICE, "titre": "t", "contenu": "c"}, headers=headers)
        assert response.status_code == 403


async def test_an_admin_sends_too(
    client: httpx.AsyncClient, auth_headers: Callable[..., Headers], deliver: Deliver
) -> None:
    await deliver("auth.user.created.v1", user_data(ALICE))
    response = await client.post(
        API, json={"user_id": ALICE, "titre": "t", "contenu": "c"}, headers=auth_headers("admin", user_id=1)
    )
    assert response.status_code == 201


# --- preferences ------------------------------------------------------------------------------------


async def test_preferences_default_and_update(client: httpx.AsyncClient, alice: Headers, bob: Headers) -> None:
    defaults = {"in_app": True, "email": True, "log": False, "sms": False, "push": False}
    assert (await client.get(f"{API}/preferences", headers=alice)).json() == defaults
    response = await client.put(f"{API}/preferences", json={"email": False, "log": True}, headers=alice)
    assert response.status_code == 200
    assert response.json() == {**defaults, "email": False, "log": True}
    assert (await client.get(f"{API}/preferences", headers=alice)).json() == {**defaults, "email": False, "log": True}
    assert (await client.get(f"{API}/preferences", headers=bob)).json() == defaults
    for bad in ({"in_app": False}, {"email": "maybe"}, {"fax": True}):
        assert (await client.put(f"{API}/preferences", json=bad, headers=alice)).status_code == 422


async def test_preferences_decide_the_deliveries(
    client: httpx.AsyncClient, db_session: AsyncSession, alice: Headers, outbox_of: Outbox
) -> None:
    await client.put(f"{API}/preferences", json={"email": False}, headers=alice)
    [in_app_only] = await give(db_session, ALICE)
    await client.put(f"{API}/preferences", json={"email": True, "log": True, "sms": True}, headers=alice)
    [everywhere] = await give(db_session, ALICE)
    one = (await client.get(f"{API}/{in_app_only}", headers=alice)).json()
    assert one["canal"] is None and one["livraisons"] == []
    other = (await client.get(f"{API}/{everywhere}", headers=alice)).json()
    assert other["canal"] == "email"
    assert [(d["canal"], d["statut"]) for d in other["livraisons"]] == [
        ("email", "pending"),
        ("log", "pending"),
        ("sms", "failed"),
    ]
    assert other["livraisons"][2]["derniere_erreur"] == (
        "The sms channel is not configured on this installation; nothing was sent."
    )
    [failed] = await outbox_of("notifications.notification.failed.v1")
    assert failed["data"]["canal"] == "sms" and failed["data"]["notification_id"] == everywhere
    assert failed["subject"] == str(everywhere)
