"""Business rules of the notifications service: creating a notification (its deliveries, events and
NOTIFY, `notify`), a user's own notifications, manual send and preferences.

Who is told what when other services' events arrive is `replicas` (its docstring has the table);
both write outbox events, flush, never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.errors import NotFound, Unprocessable
from mif_common.events import CloudEvent, add_event
from mif_notifications import repository as repo
from mif_notifications.events import DeliveryEvent, NotificationFailed
from mif_notifications.messages import Message
from mif_notifications.metrics import NOTIFICATIONS_CREATED
from mif_notifications.models import (
    DELIVERABLE,
    Canal,
    Notification,
    StatutLivraison,
)
from mif_notifications.schemas import (
    ManualNotification,
    PreferencesOut,
    PreferencesUpdate,
)

# pg_notify channels: a new notification ("<user_id>:<notification_id>", wakes the live streams and the
# e-mail sender of every replica) and a deactivated user ("<user_id>", ends that user's live streams).
NEW_NOTIFICATION_CHANNEL = "mif_notifications_new"
USER_REVOKED_CHANNEL = "mif_notifications_revoked"

NOT_CONFIGURED = "The {canal} channel is not configured on this installation; nothing was sent."
ENDED = frozenset({"cloturee", "annulee", "archivee"})


class NotificationIntrouvable(NotFound):
    slug = "notification-not-found"


class DestinataireInvalide(Unprocessable):
    slug = "invalid-recipient"


class TechnicienInconnu(Exception):
    """A technician the replica does not know yet (its planning event may still be on its way):
    transient, so the consumer retries, then dead-letters."""


# --- creating notifications ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Origin:
    """What a notification answers: an event, or a manager's manual send."""

    event_id: str | None = None
    event_type: str | None = None
    sender_id: int | None = None

    @classmethod
    def of(cls, event: CloudEvent) -> Origin:
        return cls(event_id=event.id, event_type=event.type)


async def notify(
    session: AsyncSession,
    *,
    user_ids: Iterable[int | None],
    message: Message,
    origin: Origin,
    exclude: Iterable[int | None] = (),
    item_key: str | None = None,
    digest: bool = False,
) -> list[int]:
    """Create one notification per recipient (in-app) and its deliveries per enabled channel, in the
    caller's transaction; wake the live streams and the sender at commit. Returns the new ids.

    Deactivated users are skipped. Users the replica does not know (yet) are notified in-app; their
    e-mail waits for the address. A user already notified for this event is skipped, and so is a user
    already notified about `item_key`. With `digest`, the e-mail waits for the recipient's digest."""
    excluded = {uid for uid in exclude if uid is not None}
    wanted = list(dict.fromkeys(uid for uid in user_ids if uid is not None and uid not in excluded))
    if not wanted:
        return []
    preferences = await repo.recipients(session, wanted)
    recipients = list(preferences)
    channels = {uid: [c for c in Canal if preferences[uid][c]] for uid in recipients}
    created = await repo.insert_notifications(
        session,
        [
            {
                "user_id": uid,
                "type": message.type.value,
                "canal": channels[uid][0].value if channels[uid] else None,
                "titre": message.titre,
                "contenu": message.contenu,
                "intervention_id": message.intervention_id,
                "lien": message.lien,
                "event_id": origin.event_id,
                "event_type": origin.event_type,
                "sender_id": origin.sender_id,
                "item_key": item_key,
            }
            for uid in recipients
        ],
    )
    if not created:
        return []
    deliveries, digests = [], []
    for uid, notification_id in created.items():
        for canal in channels[uid]:
            deliverable = canal in DELIVERABLE
            grouped = digest and canal is Canal.email
            deliveries.append(
                {
                    "notification_id": notification_id,
                    "canal": canal.value,
                    "statut": (StatutLivraison.pending if deliverable else StatutLivraison.failed).value,
                    "last_error": None if deliverable else NOT_CONFIGURED.format(canal=canal.value),
                    "digest": grouped,
                }
            )
            if grouped:
                digests.append(uid)
            if not deliverable:
                await publish_delivery(
                    session,
                    NotificationFailed,
                    notification_id=notification_id,
                    user_id=uid,
                    message=message,
                    origin=origin,
                    canal=canal,
                    attempts=0,
                    error=NOT_CONFIGURED.format(canal=canal.value),
                )
    await repo.insert_deliveries(session, deliveries)
    await repo.queue_digests(session, digests)
    payloads = [f"{uid}:{nid}" for uid, nid in created.items()]
    await repo.announce_all(session, NEW_NOTIFICATION_CHANNEL, payloads)
    NOTIFICATIONS_CREATED.labels(message.type.value).inc(len(created))
    return sorted(created.values())


async def publish_delivery(
    session: AsyncSession,
    event_cls: type[DeliveryEvent],
    *,
    notification_id: int,
    user_id: int,
    message: Message,
    origin: Origin,
    canal: Canal | str,
    attempts: int,
    **extra: str,
) -> None:
    """`notifications.notification.sent|failed.v1` for one delivery."""
    await add_event(
        session,
        event_cls(
            notification_id=notification_id,
            user_id=user_id,
            type=message.type.value,
            canal=str(canal),
            titre=message.titre,
            intervention_id=message.intervention_id,
            attempts=attempts,
            source_event_id=origin.event_id,
            source_event_type=origin.event_type,
            occurred_at=now(),
            **extra,
        ),
        subject=notification_id,
    )


# --- a user's own notifications -----------------------------------------------------------------


async def get_own(session: AsyncSession, *, notification_id: int, principal: Principal) -> Notification:
    """One of the caller's notifications; anyone else's is "not found"."""
    notification = await repo.own_notification(session, notification_id=notification_id, user_id=principal.user_id)
    if notification is None:
        raise NotificationIntrouvable(f"No notification with id {notification_id}.")
    return notification


async def mark_read(session: AsyncSession, *, notification_id: int, principal: Principal) -> Notification:
    """Mark read (idempotent: the first reading's date is kept)."""
    notification = await repo.own_notification(
        session, notification_id=notification_id, user_id=principal.user_id, for_update=True
    )
    if notification is None:
        raise NotificationIntrouvable(f"No notification with id {notification_id}.")
    if not notification.lue:
        notification.lue = True
        notification.date_lecture = now()
        await session.flush()
    return notification


async def mark_all_read(session: AsyncSession, *, principal: Principal) -> int:
    return await repo.mark_all_read(session, user_id=principal.user_id)


async def delete_own(session: AsyncSession, *, notification_id: int, principal: Principal) -> None:
    if not await repo.delete_notification(session, notification_id=notification_id, user_id=principal.user_id):
        raise NotificationIntrouvable(f"No notification with id {notification_id}.")


async def unread_count(session: AsyncSession, *, principal: Principal) -> int:
    return await repo.unread_count(session, user_id=principal.user_id)


# --- manual send ----------------------------------------------------------------------------------


async def send_manual(session: AsyncSession, *, data: ManualNotification, sender: Principal) -> list[int]:
    """A manager's message to one active user, or to every active user of a role."""
    if (data.user_id is None) == (data.role is None):
        raise DestinataireInvalide(
            "Give exactly one recipient: either user_id (one user) or role (every active user with that role).",
            errors=[{"field": "user_id", "message": "give user_id or role, not both or neither"}],
        )
    if data.user_id is not None:
        user = (await repo.users_by_ids(session, [data.user_id])).get(data.user_id)
        if user is None:
            raise DestinataireInvalide(
                f"No user with id {data.user_id} is known to the notifications service.",
                errors=[{"field": "user_id", "message": "unknown user"}],
            )
        if not user.is_active:
            raise DestinataireInvalide(
                f"The user {user.username} (id {data.user_id}) is deactivated and cannot be notified.",
                errors=[{"field": "user_id", "message": "deactivated user"}],
            )
        recipients = [data.user_id]
    else:
        assert data.role is not None
        recipients = await repo.active_users_with_roles(session, [data.role])
        if not recipients:
            raise DestinataireInvalide(
                f"No active user has the role '{data.role}'.",
                errors=[{"field": "role", "message": "no active user with this role"}],
            )
    message = Message(data.type, data.titre, data.contenu, data.intervention_id)
    return await notify(session, user_ids=recipients, message=message, origin=Origin(sender_id=sender.user_id))


async def notifications_by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Notification]:
    return await repo.notifications_by_ids(session, ids)


# --- preferences ----------------------------------------------------------------------------------


async def preferences(session: AsyncSession, *, principal: Principal) -> PreferencesOut:
    chosen = (await repo.preferences_of(session, [principal.user_id]))[principal.user_id]
    return PreferencesOut(**{canal.value: enabled for canal, enabled in chosen.items()})


async def update_preferences(session: AsyncSession, *, principal: Principal, data: PreferencesUpdate) -> PreferencesOut:
    sent = {Canal(k): v for k, v in data.model_dump(exclude_unset=True).items() if v is not None}
    await repo.set_preferences(session, user_id=principal.user_id, choices=sent)
    return await preferences(session, principal=principal)
