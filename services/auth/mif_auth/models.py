"""Tables of the auth schema: users (with credentials), refresh tokens, login attempts and sign-in guards."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mif_common.db import new_metadata

ROLES = ("admin", "responsable", "technicien", "client")


class Base(DeclarativeBase):
    metadata = new_metadata()


class User(Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(50))
    email: Mapped[str] = mapped_column(sa.String(254))
    full_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    password_hash: Mapped[str] = mapped_column(sa.String(100))
    # Bumped on every change that must invalidate issued access tokens (role, deactivation, password).
    token_version: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    last_login: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(f"role IN {ROLES}", name="role"),
        sa.CheckConstraint("(role = 'client') = (client_id IS NOT NULL)", name="client_id_for_client_role"),
        sa.Index("uq_user_username_lower", sa.func.lower(sa.text("username")), unique=True),
        sa.Index("uq_user_email_lower", sa.func.lower(sa.text("email")), unique=True),
    )


class RefreshToken(Base):
    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    # All tokens rotated from one login share a family; reuse of a rotated one revokes the family.
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(300))


class LoginAttempt(Base):
    """One checked sign-in (attempts refused by the throttling before any password check are not
    recorded). `account` is what was typed; `user_id` the account it named, when one exists: known
    accounts are counted by id (username and e-mail alike), unknown ones by `account`."""

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    account: Mapped[str] = mapped_column(sa.String(254))
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    ip: Mapped[str] = mapped_column(sa.String(64))
    succeeded: Mapped[bool] = mapped_column(sa.Boolean)
    attempted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.Index("ix_login_attempt_account_time", "account", "attempted_at"),
        sa.Index("ix_login_attempt_ip_time", "ip", "attempted_at"),
        sa.Index("ix_login_attempt_user_time", "user_id", "attempted_at"),
    )


class SignInGuard(Base):
    """Per-account throttling state besides the attempts themselves: the last administrator unlock
    (failures before it no longer count) and the last "your account is being guessed" notice (one per
    window). A row exists once either happened."""

    __tablename__ = "sign_in_guard"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    unlocked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    unlocked_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    alerted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class ClientRef(Base):
    """Replica of the client organisations (owned by assets), fed by `assets.client.*.v1` events and,
    on a miss, by one question to assets. A client user must belong to a known, active one."""

    __tablename__ = "client_ref"

    client_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    nom_entreprise: Mapped[str] = mapped_column(sa.String(200))
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    # The organisation's own modification time at assets: older news never overwrites newer.
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
