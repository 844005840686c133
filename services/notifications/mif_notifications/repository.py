"""Queries of the notifications service."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import selectinload

from mif_common.listing import ListQuery
from mif_common.pagination import Sortable
from mif_common.replicas import Replica, Rule, upsert_if_newer
from mif_common.statements import Statement
from mif_notifications.models import (
    DEFAULT_PREFERENCES,
    Canal,
    EmailDigest,
    InterventionRef,
    Livraison,
    Notification,
    Preference,
    StatutLivraison,
    TechnicienRef,
    UserRef,
)
from mif_notifications.schemas import NotificationOut

# --- replicas -----------------------------------------------------------------------------------


async def upsert_user_ref(session: AsyncSession, **values: Any) -> bool:
    """Insert or update one user unless the replica already holds later news; False when stale."""
    return await upsert_if_newer(session, UserRef, key=UserRef.user_id, freshness=UserRef.event_time, values=values)


async def upsert_technicien_ref(session: AsyncSession, **values: Any) -> bool:
    """Insert or update one technician unless the replica holds a later version; False when stale."""
    return await upsert_if_newer(
        session, TechnicienRef, key=TechnicienRef.technicien_id, freshness=TechnicienRef.version, values=values
    )


@dataclass(frozen=True, slots=True)
class Tracked:
    """The replica's row after recording a fact, and whether the fact was the latest known."""

    intervention_id: int
    titre: str
    client_id: int | None
    technicien_id: int | None
    requester_id: int | None
    statut: str
    occurred_at: datetime
    fresh: bool


def _fact_if_newer(name: str) -> Rule:
    return lambda table, excluded: sa.case(
        (table.c.occurred_at <= excluded.occurred_at, excluded[name]), else_=table.c[name]
    )


# The mutable fields only if the fact is not older than what the replica holds; the requester (known
# from `created` only) is kept whatever order the events arrive in.
INTERVENTIONS = Replica(
    InterventionRef,
    key="intervention_id",
    newer=None,
    merge={
        **{name: _fact_if_newer(name) for name in ("titre", "client_id", "technicien_id", "statut", "occurred_at")},
        "requester_id": lambda table, excluded: sa.func.coalesce(table.c.requester_id, excluded.requester_id),
    },
    returning=("titre", "client_id", "technicien_id", "requester_id", "statut", "occurred_at"),
)


async def track_intervention(
    session: AsyncSession,
    *,
    intervention_id: int,
    titre: str,
    client_id: int | None,
    technicien_id: int | None,
    statut: str,
    occurred_at: datetime,
    requester_id: int | None,
) -> Tracked:
    """Record a fact in one statement (the row stays locked until commit)."""
    row = await INTERVENTIONS.upsert(
        session,
        {
            "intervention_id": intervention_id,
            "titre": titre,
            "client_id": client_id,
            "technicien_id": technicien_id,
            "requester_id": requester_id,
            "statut": statut,
            "occurred_at": occurred_at,
        },
    )
    assert row is not None  # always written (no `newer` condition)
    # Fresh when the stored facts are now this one's (equal times count as fresh, as in `newer`).
    return Tracked(**dict(row.items()), fresh=row["occurred_at"] == occurred_at)


async def intervention_ref(session: AsyncSession, intervention_id: int) -> InterventionRef | None:
    return await session.get(InterventionRef, intervention_id)


async def technicien_ref(session: AsyncSession, technicien_id: int) -> TechnicienRef | None:
    return await session.get(TechnicienRef, technicien_id)


async def users_by_ids(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, UserRef]:
    ids = list(user_ids)
    if not ids:
        return {}
    rows = await session.scalars(sa.select(UserRef).where(UserRef.user_id.in_(ids)))
    return {u.user_id: u for u in rows}


async def active_users_with_roles(session: AsyncSession, roles: Sequence[str]) -> list[int]:
    rows = await session.scalars(
        sa.select(UserRef.user_id).where(UserRef.role.in_(roles), UserRef.is_active).order_by(UserRef.user_id)
    )
    return list(rows)


async def active_client_users(session: AsyncSession, client_id: int) -> list[int]:
    rows = await session.scalars(
        sa.select(UserRef.user_id)
        .where(UserRef.role == "client", UserRef.client_id == client_id, UserRef.is_active)
        .order_by(UserRef.user_id)
    )
    return list(rows)


# --- preferences --------------------------------------------------------------------------------


async def preferences_of(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, dict[Canal, bool]]:
    """Every channel's choice for each user, defaults filled in."""
    chosen: dict[int, dict[Canal, bool]] = {uid: dict(DEFAULT_PREFERENCES) for uid in user_ids}
    if not user_ids:
        return chosen
    rows = await session.execute(
        sa.select(Preference.user_id, Preference.canal, Preference.enabled).where(Preference.user_id.in_(user_ids))
    )
    for user_id, canal, enabled in rows:
        chosen[user_id][Canal(canal)] = enabled
    return chosen


async def recipients(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, dict[Canal, bool]]:
    """The channel choices of each user that may be notified, in one query: users the replica knows as
    deactivated are left out, users it does not know (yet) are kept (defaults apply)."""
    chosen: dict[int, dict[Canal, bool]] = {}
    if not user_ids:
        return chosen
    rows = await session.execute(
        sa.text(
            "SELECT r.user_id, u.is_active, p.canal, p.enabled FROM unnest(CAST(:ids AS bigint[])) AS r(user_id)"
            " LEFT JOIN user_ref u USING (user_id) LEFT JOIN preference p USING (user_id)"
        ),
        {"ids": list(user_ids)},
    )
    for user_id, is_active, canal, enabled in rows:
        if is_active is False:
            continue
        choices = chosen.setdefault(user_id, dict(DEFAULT_PREFERENCES))
        if canal is not None:
            choices[Canal(canal)] = enabled
    return {uid: chosen[uid] for uid in user_ids if uid in chosen}


async def set_preferences(session: AsyncSession, *, user_id: int, choices: Mapping[Canal, bool]) -> None:
    if not choices:
        return
    insert = pg_insert(Preference).values(
        [{"user_id": user_id, "canal": canal.value, "enabled": enabled} for canal, enabled in choices.items()]
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[Preference.user_id, Preference.canal],
            set_={"enabled": insert.excluded.enabled, "updated_at": sa.func.now()},
        )
    )


# --- notifications ------------------------------------------------------------------------------


async def insert_notifications(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Insert notifications, skipping (event, user) and (user, item) pairs that exist; returns user_id →
    new id."""
    if not rows:
        return {}
    # One statement with its parameters apart (not a literal multi-row VALUES): compiled and prepared once.
    # No conflict target: both unique keys (event, user) and (user, item) skip a row.
    statement = pg_insert(Notification).on_conflict_do_nothing().returning(Notification.user_id, Notification.id)
    result = await session.execute(statement, list(rows))
    return {user_id: notification_id for user_id, notification_id in result}


async def insert_deliveries(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        await session.execute(sa.insert(Livraison), list(rows))


async def queue_digests(session: AsyncSession, user_ids: Sequence[int]) -> None:
    """The recipients have an item waiting for their digest: a digest with nothing waiting starts waiting
    now; one already waiting keeps its start (so its e-mail is not put off by each new item)."""
    if not user_ids:
        return
    insert = pg_insert(EmailDigest).values([{"user_id": uid, "pending_since": sa.func.now()} for uid in user_ids])
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[EmailDigest.user_id],
            set_={"pending_since": insert.excluded.pending_since},
            where=EmailDigest.pending_since.is_(None),
        )
    )


# The caller's list: one statement for the page and its total, compiled once per shape, and one for the
# page's deliveries (mif_common.listing), rows as `NotificationOut`'s fields.

_NOTIFICATION_FIELDS = [name for name in NotificationOut.model_fields if name != "livraisons"]


def notifications_list(sort: Mapping[str, Sortable]) -> ListQuery:
    return ListQuery(
        columns=[getattr(Notification, name).label(name) for name in _NOTIFICATION_FIELDS],
        source=Notification,
        key=Notification.id,
        terms={
            "user_id": lambda: Notification.user_id == sa.bindparam("user_id", type_=sa.BigInteger()),
            "lue": lambda: Notification.lue == sa.bindparam("lue", type_=sa.Boolean()),  # NOT NULL: `=` is `IS`
            "type": lambda: Notification.type == sa.bindparam("type", type_=sa.String()),
        },
        sort=sort,
        default=[Notification.id.desc()],
    )


_DELIVERIES = Statement(
    lambda: (
        sa.select(
            Livraison.notification_id,
            Livraison.canal,
            Livraison.statut,
            Livraison.attempts,
            Livraison.last_error,
            Livraison.next_attempt_at,
            Livraison.sent_at,
        )
        .where(Livraison.notification_id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger()))))
        .order_by(Livraison.id)
    ),
    ["ids"],
)


async def with_deliveries(connection: AsyncConnection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with their `livraisons`, as `NotificationOut` shows them (`LivraisonOut`'s fields, in its
    order, and no `prochaine_tentative` once a delivery is done), in delivery id order."""
    by_id: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        row["livraisons"] = by_id[row["id"]] = []
    if not rows:
        return rows
    for d in await _DELIVERIES.fetch(connection, {"ids": list(by_id)}):
        pending = d["statut"] == StatutLivraison.pending.value
        by_id[d["notification_id"]].append(
            {
                "canal": d["canal"],
                "statut": d["statut"],
                "tentatives": d["attempts"],
                "derniere_erreur": d["last_error"],
                "prochaine_tentative": d["next_attempt_at"] if pending else None,
                "date_envoi": d["sent_at"],
            }
        )
    return rows


async def notifications_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Notification]:
    rows = await session.scalars(
        sa.select(Notification)
        .where(Notification.id.in_(ids))
        .options(selectinload(Notification.livraisons))
        .order_by(Notification.id)
    )
    return list(rows)


async def own_notification(
    session: AsyncSession, *, notification_id: int, user_id: int, for_update: bool = False
) -> Notification | None:
    query = (
        sa.select(Notification)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .options(selectinload(Notification.livraisons))
    )
    if for_update:
        query = query.with_for_update(of=Notification).execution_options(populate_existing=True)
    return await session.scalar(query)


async def notifications_after(session: AsyncSession, *, user_id: int, after_id: int, limit: int) -> list[Notification]:
    """The user's notifications newer than `after_id`, oldest first, deliveries loaded with them (the live
    stream's replay)."""
    rows = await session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == user_id, Notification.id > after_id)
        .options(selectinload(Notification.livraisons))
        .order_by(Notification.id)
        .limit(limit)
    )
    return list(rows)


async def last_notification_id(session: AsyncSession, *, user_id: int) -> int:
    value = await session.scalar(sa.select(sa.func.max(Notification.id)).where(Notification.user_id == user_id))
    return int(value or 0)


async def unread_count(session: AsyncSession, *, user_id: int) -> int:
    value = await session.scalar(
        sa.select(sa.func.count()).select_from(Notification).where(Notification.user_id == user_id, ~Notification.lue)
    )
    return int(value or 0)


async def mark_all_read(session: AsyncSession, *, user_id: int) -> int:
    result = await session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user_id, ~Notification.lue)
        .values(lue=True, date_lecture=sa.func.now())
        .returning(Notification.id)
    )
    return len(result.all())


async def delete_notification(session: AsyncSession, *, notification_id: int, user_id: int) -> bool:
    deleted = await session.scalar(
        sa.delete(Notification)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .returning(Notification.id)
    )
    return deleted is not None


# --- LISTEN/NOTIFY --------------------------------------------------------------------------------


async def announce(session: AsyncSession, channel: str, payload: str) -> None:
    """NOTIFY `channel` (delivered to the listeners when the transaction commits)."""
    await session.execute(sa.select(sa.func.pg_notify(channel, payload)))


async def announce_all(session: AsyncSession, channel: str, payloads: Sequence[str]) -> None:
    """One NOTIFY per payload on `channel`, in one statement (delivered when the transaction commits)."""
    await session.execute(
        sa.text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"),
        {"channel": channel, "payloads": list(payloads)},
    )
