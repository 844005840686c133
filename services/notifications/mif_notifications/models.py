"""Tables of the notifications schema: notifications, their deliveries per channel, users' channel
preferences, and the replicas (users, technicians, interventions) that recipients are resolved from."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mif_common.db import new_metadata


class TypeNotification(StrEnum):
    affectation = "affectation"
    cloture = "cloture"
    rappel = "rappel"
    retard = "retard"
    information = "information"
    # A part's available stock fell to its minimum (`inventory.stock.low.v1`): managers have to order.
    stock_bas = "stock_bas"
    # A reports export job ended (`reports.export.completed|failed.v1`): its requester can download the file,
    # or has to start it again.
    rapport_pret = "rapport_pret"
    rapport_echoue = "rapport_echoue"


class Canal(StrEnum):
    """External channels (DOMAIN.md §2); in-app is not one of them: every notification is in-app."""

    email = "email"
    log = "log"
    sms = "sms"
    push = "push"


class StatutLivraison(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


# Channel preferences when a user has not chosen: e-mail on, the others off.
DEFAULT_PREFERENCES: dict[Canal, bool] = {Canal.email: True, Canal.log: False, Canal.sms: False, Canal.push: False}
# Channels this installation can deliver; the others are recorded as failed ("not configured").
DELIVERABLE = frozenset({Canal.email, Canal.log})

MANAGER_ROLES = ("admin", "responsable")
CONTENU_MAX = 1000
TITRE_MAX = 255
LIEN_MAX = 500


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Notification(Base):
    """One message to one user, readable in-app; its external deliveries are `Livraison` rows."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    type: Mapped[str] = mapped_column(sa.String(20))
    # The main external channel chosen for it (the first of its deliveries), None when in-app only.
    canal: Mapped[str | None] = mapped_column(sa.String(10))
    titre: Mapped[str] = mapped_column(sa.String(TITRE_MAX))
    contenu: Mapped[str] = mapped_column(sa.String(CONTENU_MAX))
    intervention_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # The application path it points to when that is not an intervention (an export job's page), so the
    # e-mail can link to it long after the event; None for the others.
    lien: Mapped[str | None] = mapped_column(sa.String(LIEN_MAX))
    lue: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    date_lecture: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_envoi: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    # The event it answers (None for a manual notification) and who sent a manual one.
    event_id: Mapped[str | None] = mapped_column(sa.String(100))
    event_type: Mapped[str | None] = mapped_column(sa.String(200))
    sender_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # What the notification is about, for facts that must reach a user once whatever the events say
    # (`retard-intervention:<id>`, `retard-occurrence:<key>`, ...); None for the others.
    item_key: Mapped[str | None] = mapped_column(sa.String(200))

    livraisons: Mapped[list[Livraison]] = relationship(
        back_populates="notification", cascade="all, delete-orphan", passive_deletes=True, order_by="Livraison.id"
    )

    __table_args__ = (
        sa.CheckConstraint(f"type IN {_in(TypeNotification)}", name="type"),
        sa.CheckConstraint(f"canal IN {_in(Canal)}", name="canal"),
        sa.CheckConstraint("(date_lecture IS NOT NULL) = lue", name="date_lecture_when_lue"),
        # An event notifies each user at most once, whatever happens to the inbox.
        sa.UniqueConstraint("event_id", "user_id", name="uq_notification_event_id_user_id"),
        # The same item (a late intervention, an overdue occurrence) is told to each user once.
        sa.Index(
            "uq_notification_user_id_item_key",
            "user_id",
            "item_key",
            unique=True,
            postgresql_where=sa.text("item_key IS NOT NULL"),
        ),
        sa.Index("ix_notification_user_id_id", "user_id", "id"),
        sa.Index("ix_notification_user_id_unread", "user_id", postgresql_where=sa.text("NOT lue")),
    )


class Livraison(Base):
    """The delivery of a notification on one external channel: status, attempts, back-off."""

    __tablename__ = "delivery"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    notification_id: Mapped[int] = mapped_column(sa.ForeignKey("notification.id", ondelete="CASCADE"))
    canal: Mapped[str] = mapped_column(sa.String(10))
    statut: Mapped[str] = mapped_column(sa.String(10), server_default=StatutLivraison.pending.value)
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    # An e-mail that goes out in its recipient's digest (lateness), with the other items of the interval,
    # instead of a message of its own: the sender sends it through `EmailDigest`.
    digest: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())

    notification: Mapped[Notification] = relationship(back_populates="livraisons")

    __table_args__ = (
        sa.CheckConstraint(f"canal IN {_in(Canal)}", name="canal"),
        sa.CheckConstraint(f"statut IN {_in(StatutLivraison)}", name="statut"),
        sa.UniqueConstraint("notification_id", "canal", name="uq_delivery_notification_id_canal"),
        # The sender only ever scans pending rows, in due order (digest items: per recipient, below).
        sa.Index("ix_delivery_due", "next_attempt_at", postgresql_where=sa.text("statut = 'pending' AND NOT digest")),
        sa.Index(
            "ix_delivery_digest_pending", "notification_id", postgresql_where=sa.text("statut = 'pending' AND digest")
        ),
    )


class EmailDigest(Base):
    """A recipient's digest of late items: its pending `digest` deliveries go out as ONE e-mail once the
    oldest has waited `digest_interval_seconds` (so at most one digest per interval and recipient). The
    sender claims due rows with `FOR UPDATE SKIP LOCKED`, like deliveries: each digest is sent once,
    whatever the replicas and restarts."""

    __tablename__ = "email_digest"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    # Since when items wait (the first one queued, or the last digest sent when more came meanwhile);
    # None: nothing waits.
    pending_since: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Not before this (the lease of a claimed digest, or the back-off after a failure); None: no wait.
    retry_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0")  # of the digest being sent
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    last_sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_email_digest_pending", "pending_since", postgresql_where=sa.text("pending_since IS NOT NULL")),
    )


class Preference(Base):
    """A user's choice for one channel; absent rows mean `DEFAULT_PREFERENCES`."""

    __tablename__ = "preference"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    canal: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    enabled: Mapped[bool] = mapped_column(sa.Boolean)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (sa.CheckConstraint(f"canal IN {_in(Canal)}", name="canal"),)


# --- replicas of other services' data -----------------------------------------------------------


class UserRef(Base):
    """Replica of auth's users (`auth.user.*.v1`): addresses, roles and organisations of recipients."""

    __tablename__ = "user_ref"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(sa.String(50))
    email: Mapped[str] = mapped_column(sa.String(254))
    full_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    # The envelope time of the event it comes from (auth's events carry no version): older news never
    # overwrites newer.
    event_time: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_user_ref_role_active", "role", postgresql_where=sa.text("is_active")),
        sa.Index("ix_user_ref_client_id_active", "client_id", postgresql_where=sa.text("is_active")),
    )


class TechnicienRef(Base):
    """Replica of planning's technicians (`planning.technicien.*.v1`): which user a technician is."""

    __tablename__ = "technicien_ref"

    technicien_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    version: Mapped[int] = mapped_column(sa.Integer)


class InterventionRef(Base):
    """Replica of the interventions (`interventions.intervention.*.v1`): who asked for it, who works on
    it, which organisation it is for."""

    __tablename__ = "intervention_ref"

    intervention_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    titre: Mapped[str] = mapped_column(sa.String(255))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # The actor of the `created` event; kept whatever order the events arrive in.
    requester_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    statut: Mapped[str] = mapped_column(sa.String(20))
    # When the fact behind the mutable fields happened at interventions; older facts do not overwrite.
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
