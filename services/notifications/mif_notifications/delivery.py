"""The sender: delivers pending `delivery` rows (e-mail over SMTP, log lines) in the background.

The rows are written by the event handlers in their own transaction (an outbox of messages), so a
slow or broken SMTP server never holds up or fails the business flow. Invariants:

- Claiming is `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`: the attempt is counted and
  the row leased (`next_attempt_at` pushed past the time the batch may take) in one short transaction,
  so several replicas never send a row at the same time, and no transaction stays open during SMTP.
  A process that dies mid-send leaves the row to be claimed again once its lease ends: at-least-once.
- Success: `sent`, `sent_at`, and `notifications.notification.sent.v1`. A failure backs off
  exponentially (`backoff(attempts)`); after `email_max_attempts`, or a permanent refusal (5xx), or a
  deactivated recipient: `failed` and `notifications.notification.failed.v1`. Every outcome is written
  with the event in one transaction.
- Woken at once by each new notification (NOTIFY through the hub); polling is the safety net and the
  clock of retries.
- Lateness e-mails (`digest` deliveries) are not sent one by one: each pass also claims the recipients'
  digests (`email_digest`) whose oldest waiting item has waited `digest_interval_seconds`, the same way
  (`FOR UPDATE SKIP LOCKED`, attempt counted and row leased in one short transaction), and sends each
  as ONE e-mail listing its items. Success or giving up settles every item of the batch (each with its
  `sent`/`failed` event); items that arrived meanwhile wait for the next interval.

Longer than our usual ~450 lines on purpose: it is one class, `DeliverySender`, whose two kinds of
work (single deliveries, digests) share its lease, back-off and settling steps (`_finish`, `_publish`);
split, each half would reach into the other's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.datetimes import now
from mif_common.request_context import causation_id_var
from mif_notifications import mail
from mif_notifications.config import NotificationsSettings
from mif_notifications.events import NotificationFailed, NotificationSent
from mif_notifications.messages import Message
from mif_notifications.metrics import DELIVERIES, DELIVERIES_PENDING, DIGESTS
from mif_notifications.models import (
    DELIVERABLE,
    Canal,
    EmailDigest,
    Livraison,
    Notification,
    StatutLivraison,
    TypeNotification,
)
from mif_notifications.models import UserRef as UserRefRow
from mif_notifications.service import Origin, publish_delivery

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased delivery with what sending it needs."""

    delivery_id: int
    canal: Canal
    attempts: int
    notification_id: int
    user_id: int
    message: Message
    date_envoi: datetime
    origin: Origin
    email: str | None
    full_name: str | None
    user_active: bool | None  # None: the user is not in the replica (yet)


@dataclass(frozen=True, slots=True)
class ClaimedDigest:
    """A leased digest: its recipient, the attempt it is at, and its items (digest deliveries)."""

    user_id: int
    attempts: int
    items: list[Claimed]


class DeliverySender:
    def __init__(self, *, sessionmaker: async_sessionmaker[AsyncSession], settings: NotificationsSettings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.wake = asyncio.Event()

    def backoff(self, attempts: int) -> float:
        """Seconds before retrying a delivery that failed `attempts` times: base, 2·base, 4·base, ... capped."""
        settings = self.settings
        return float(min(settings.email_max_backoff, settings.email_backoff_base * 2 ** max(0, attempts - 1)))

    @property
    def lease(self) -> timedelta:
        """Longest a claimed batch may take: connect, then each message, each bounded by the timeout."""
        return timedelta(seconds=self.settings.smtp_timeout * (self.settings.sender_batch_size + 2) + 5)

    async def run(self) -> None:
        """Deliver forever: woken by new notifications, polling as the safety net."""
        last_gauge = 0.0
        while True:
            self.wake.clear()  # before the pass: a wake-up during it triggers another pass
            try:
                while await self.send_due() >= self.settings.sender_batch_size:
                    pass
                while await self.send_digests() >= self.settings.sender_batch_size:
                    pass
                if time.monotonic() - last_gauge > 5:
                    last_gauge = time.monotonic()
                    await self._record_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("delivery pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.sender_poll_interval):
                    await self.wake.wait()
            if self.wake.is_set():
                # A burst (a message to a whole role, a wave of events) goes out in one SMTP session, and
                # the in-app path of the notification that woke us goes first.
                await asyncio.sleep(self.settings.sender_batch_window)

    async def send_due(self) -> int:
        """One pass: claim a batch of due deliveries, send them, record the outcomes; returns how many."""
        claimed = await self._claim()
        if not claimed:
            return 0
        outcomes = await self._deliver(claimed)
        await self._record(claimed, outcomes)
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        due = (
            sa.select(Livraison.id)
            .where(
                Livraison.statut == StatutLivraison.pending.value,
                Livraison.next_attempt_at <= sa.func.now(),
                Livraison.canal.in_([c.value for c in DELIVERABLE]),
                Livraison.digest.is_(False),
            )
            .order_by(Livraison.next_attempt_at, Livraison.id)
            .limit(self.settings.sender_batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.sessionmaker() as session, session.begin():
            ids = list(
                await session.scalars(
                    sa.update(Livraison)
                    .where(Livraison.id.in_(due.scalar_subquery()))
                    .values(attempts=Livraison.attempts + 1, next_attempt_at=sa.func.now() + self.lease)
                    .returning(Livraison.id)
                    .execution_options(synchronize_session=False)
                )
            )
            if not ids:
                return []
            return await self._load(session, ids)

    @staticmethod
    async def _load(session: AsyncSession, delivery_ids: list[int]) -> list[Claimed]:
        rows = await session.execute(
            sa.select(Livraison, Notification, UserRefRow)
            .join(Notification, Notification.id == Livraison.notification_id)
            .outerjoin(UserRefRow, UserRefRow.user_id == Notification.user_id)
            .where(Livraison.id.in_(delivery_ids))
            .order_by(Livraison.id)
        )
        return [
            Claimed(
                delivery_id=delivery.id,
                canal=Canal(delivery.canal),
                attempts=delivery.attempts,
                notification_id=notification.id,
                user_id=notification.user_id,
                message=Message(
                    TypeNotification(notification.type),
                    notification.titre,
                    notification.contenu,
                    notification.intervention_id,
                    notification.lien,
                ),
                date_envoi=notification.date_envoi,
                origin=Origin(
                    event_id=notification.event_id,
                    event_type=notification.event_type,
                    sender_id=notification.sender_id,
                ),
                email=user.email if user else None,
                full_name=user.full_name if user else None,
                user_active=user.is_active if user else None,
            )
            for delivery, notification, user in rows
        ]

    async def _deliver(self, claimed: list[Claimed]) -> list[mail.SendFailure | None]:
        outcomes: list[mail.SendFailure | None] = [None] * len(claimed)
        to_send: list[int] = []
        for index, item in enumerate(claimed):
            if item.user_active is False:
                outcomes[index] = mail.SendFailure("the recipient's account is deactivated", permanent=True)
            elif item.canal is Canal.log:
                logger.info(
                    "notification %s for user %s [%s] %s: %s",
                    item.notification_id,
                    item.user_id,
                    item.message.type.value,
                    item.message.titre,
                    item.message.contenu,
                )
            elif item.email is None:
                outcomes[index] = mail.SendFailure(
                    f"no e-mail address known for user {item.user_id} yet", permanent=False
                )
            else:
                to_send.append(index)
        if to_send:
            messages = [
                mail.build_message(
                    mail.Email(
                        notification_id=claimed[i].notification_id,
                        to_address=claimed[i].email or "",
                        to_name=claimed[i].full_name or "",
                        type=claimed[i].message.type,
                        titre=claimed[i].message.titre,
                        contenu=claimed[i].message.contenu,
                        intervention_id=claimed[i].message.intervention_id,
                        lien=claimed[i].message.lien,
                        date_envoi=claimed[i].date_envoi,
                    ),
                    settings=self.settings,
                )
                for i in to_send
            ]
            for index, outcome in zip(to_send, await mail.send_all(messages, settings=self.settings), strict=True):
                outcomes[index] = outcome
        return outcomes

    async def _record(self, claimed: list[Claimed], outcomes: list[mail.SendFailure | None]) -> None:
        async with self.sessionmaker() as session, session.begin():
            for item, failure in zip(claimed, outcomes, strict=True):
                if failure is None:
                    await self._finish(session, item, StatutLivraison.sent, error=None)
                    DELIVERIES.labels(item.canal.value, "sent").inc()
                elif failure.permanent or item.attempts >= self.settings.email_max_attempts:
                    await self._finish(session, item, StatutLivraison.failed, error=failure.reason)
                    DELIVERIES.labels(item.canal.value, "failed").inc()
                else:
                    delay = self.backoff(item.attempts)
                    logger.warning(
                        "%s delivery of notification %s failed (attempt %s: %s); retry in %.1fs",
                        item.canal.value,
                        item.notification_id,
                        item.attempts,
                        failure.reason,
                        delay,
                    )
                    await session.execute(
                        sa.update(Livraison)
                        .where(Livraison.id == item.delivery_id, Livraison.statut == StatutLivraison.pending.value)
                        .values(next_attempt_at=sa.func.now() + timedelta(seconds=delay), last_error=failure.reason)
                        .execution_options(synchronize_session=False)
                    )
                    DELIVERIES.labels(item.canal.value, "retry").inc()

    async def _finish(
        self, session: AsyncSession, item: Claimed, statut: StatutLivraison, *, error: str | None
    ) -> None:
        done = await session.scalar(
            sa.update(Livraison)
            .where(Livraison.id == item.delivery_id, Livraison.statut == StatutLivraison.pending.value)
            .values(
                statut=statut.value,
                last_error=error,
                sent_at=sa.func.now() if statut is StatutLivraison.sent else None,
            )
            .returning(Livraison.id)
            .execution_options(synchronize_session=False)
        )
        if done is None:  # the notification was deleted meanwhile
            return
        # The event that caused the notification is the cause of this one too.
        token = causation_id_var.set(item.origin.event_id)
        try:
            await self._publish(session, item, statut, error=error)
        finally:
            causation_id_var.reset(token)

    async def _publish(
        self, session: AsyncSession, item: Claimed, statut: StatutLivraison, *, error: str | None
    ) -> None:
        if statut is StatutLivraison.sent:
            await publish_delivery(
                session,
                NotificationSent,
                notification_id=item.notification_id,
                user_id=item.user_id,
                message=item.message,
                origin=item.origin,
                canal=item.canal,
                attempts=item.attempts,
            )
        else:
            logger.error(
                "%s delivery of notification %s given up after %s attempt(s): %s",
                item.canal.value,
                item.notification_id,
                item.attempts,
                error,
            )
            await publish_delivery(
                session,
                NotificationFailed,
                notification_id=item.notification_id,
                user_id=item.user_id,
                message=item.message,
                origin=item.origin,
                canal=item.canal,
                attempts=item.attempts,
                error=error or "",
            )

    # --- the lateness digest ----------------------------------------------------------------------

    async def send_digests(self) -> int:
        """One pass over the digests: claim the due ones, send each as one e-mail, record the outcomes;
        returns how many digests were claimed."""
        claimed, empty = await self._claim_digests()
        if claimed:
            outcomes = await self._deliver_digests(claimed)
            await self._record_digests(claimed, outcomes)
        return len(claimed) + empty

    def _pending_items(self, user_ids: list[int]) -> sa.Select[int]:
        return (
            sa.select(Livraison.id)
            .join(Notification, Notification.id == Livraison.notification_id)
            .where(
                Notification.user_id.in_(user_ids),
                Livraison.digest.is_(True),
                Livraison.statut == StatutLivraison.pending.value,
            )
        )

    async def _claim_digests(self) -> tuple[list[ClaimedDigest], int]:
        """Lease the due digests and count an attempt on them and their items, in one short transaction.
        Returns the digests with items, and how many had none left (their items deleted meanwhile)."""
        interval = timedelta(seconds=self.settings.digest_interval_seconds)
        due = (
            sa.select(EmailDigest.user_id)
            .where(
                EmailDigest.pending_since.is_not(None),
                EmailDigest.pending_since <= sa.func.now() - interval,
                sa.or_(EmailDigest.retry_at.is_(None), EmailDigest.retry_at <= sa.func.now()),
            )
            .order_by(EmailDigest.pending_since, EmailDigest.user_id)
            .limit(self.settings.sender_batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.sessionmaker() as session, session.begin():
            leased = (
                await session.execute(
                    sa.update(EmailDigest)
                    .where(EmailDigest.user_id.in_(due.scalar_subquery()))
                    .values(attempts=EmailDigest.attempts + 1, retry_at=sa.func.now() + self.lease)
                    .returning(EmailDigest.user_id, EmailDigest.attempts)
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not leased:
                return [], 0
            attempts = {user_id: n for user_id, n in leased}
            ids = list(
                await session.scalars(
                    sa.update(Livraison)
                    .where(Livraison.id.in_(self._pending_items(list(attempts)).scalar_subquery()))
                    .values(attempts=Livraison.attempts + 1)
                    .returning(Livraison.id)
                    .execution_options(synchronize_session=False)
                )
            )
            items: dict[int, list[Claimed]] = {}
            for item in await self._load(session, ids) if ids else []:
                items.setdefault(item.user_id, []).append(item)
            empty = [user_id for user_id in attempts if user_id not in items]
            if empty:
                await session.execute(
                    sa.update(EmailDigest)
                    .where(EmailDigest.user_id.in_(empty))
                    .values(pending_since=None, retry_at=None, attempts=0)
                    .execution_options(synchronize_session=False)
                )
            digests = [
                ClaimedDigest(
                    user_id=user_id,
                    attempts=attempts[user_id],
                    items=sorted(items[user_id], key=lambda i: i.notification_id),
                )
                for user_id in attempts
                if user_id in items
            ]
            return digests, len(empty)

    async def _deliver_digests(self, claimed: list[ClaimedDigest]) -> list[mail.SendFailure | None]:
        outcomes: list[mail.SendFailure | None] = [None] * len(claimed)
        to_send: list[int] = []
        for index, digest in enumerate(claimed):
            first = digest.items[0]
            if first.user_active is False:
                outcomes[index] = mail.SendFailure("the recipient's account is deactivated", permanent=True)
            elif first.email is None:
                outcomes[index] = mail.SendFailure(
                    f"no e-mail address known for user {digest.user_id} yet", permanent=False
                )
            else:
                to_send.append(index)
        if to_send:
            at = now()
            messages = [
                mail.build_digest_message(
                    mail.Digest(
                        user_id=claimed[i].user_id,
                        to_address=claimed[i].items[0].email or "",
                        to_name=claimed[i].items[0].full_name or "",
                        items=[
                            mail.DigestItem(
                                notification_id=item.notification_id,
                                titre=item.message.titre,
                                contenu=item.message.contenu,
                                intervention_id=item.message.intervention_id,
                                date_envoi=item.date_envoi,
                            )
                            for item in claimed[i].items
                        ],
                        date_envoi=at,
                    ),
                    settings=self.settings,
                )
                for i in to_send
            ]
            for index, outcome in zip(to_send, await mail.send_all(messages, settings=self.settings), strict=True):
                outcomes[index] = outcome
        return outcomes

    async def _record_digests(self, claimed: list[ClaimedDigest], outcomes: list[mail.SendFailure | None]) -> None:
        async with self.sessionmaker() as session, session.begin():
            for digest, failure in zip(claimed, outcomes, strict=True):
                # The digest's lock first: a handler queueing an item for this recipient meanwhile either
                # committed before (its item is seen below, and waits for the next interval) or waits.
                await session.execute(
                    sa.select(EmailDigest.user_id).where(EmailDigest.user_id == digest.user_id).with_for_update()
                )
                if failure is None or failure.permanent or digest.attempts >= self.settings.email_max_attempts:
                    statut = StatutLivraison.sent if failure is None else StatutLivraison.failed
                    for item in digest.items:
                        await self._finish(session, item, statut, error=failure.reason if failure else None)
                    DELIVERIES.labels(Canal.email.value, statut.value).inc(len(digest.items))
                    DIGESTS.labels(statut.value).inc()
                    if failure is not None:
                        logger.error(
                            "digest of %d late item(s) for user %s given up after %s attempt(s): %s",
                            len(digest.items),
                            digest.user_id,
                            digest.attempts,
                            failure.reason,
                        )
                    more = await session.scalar(sa.select(self._pending_items([digest.user_id]).exists()))
                    values: dict[str, object] = {
                        "pending_since": sa.func.now() if more else None,
                        "retry_at": None,
                        "attempts": 0,
                        "last_error": failure.reason if failure else None,
                    }
                    if failure is None:
                        values["last_sent_at"] = sa.func.now()
                else:
                    delay = self.backoff(digest.attempts)
                    logger.warning(
                        "digest of %d late item(s) for user %s failed (attempt %s: %s); retry in %.1fs",
                        len(digest.items),
                        digest.user_id,
                        digest.attempts,
                        failure.reason,
                        delay,
                    )
                    DIGESTS.labels("retry").inc()
                    await session.execute(
                        sa.update(Livraison)
                        .where(
                            Livraison.id.in_([item.delivery_id for item in digest.items]),
                            Livraison.statut == StatutLivraison.pending.value,
                        )
                        .values(last_error=failure.reason)
                        .execution_options(synchronize_session=False)
                    )
                    values = {"retry_at": sa.func.now() + timedelta(seconds=delay), "last_error": failure.reason}
                await session.execute(
                    sa.update(EmailDigest)
                    .where(EmailDigest.user_id == digest.user_id)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )

    async def _record_pending(self) -> None:
        async with self.sessionmaker() as session:
            count = await session.scalar(
                sa.select(sa.func.count())
                .select_from(Livraison)
                .where(Livraison.statut == StatutLivraison.pending.value)
            )
        DELIVERIES_PENDING.set(int(count or 0))
