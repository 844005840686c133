"""Queries of the auth service."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.models import ClientRef, LoginAttempt, RefreshToken, User


async def user_by_login(session: AsyncSession, identifier: str) -> User | None:
    ident = identifier.strip().lower()
    return await session.scalar(
        sa.select(User).where(sa.or_(sa.func.lower(User.username) == ident, sa.func.lower(User.email) == ident))
    )


async def user_by_id(session: AsyncSession, user_id: int, *, for_update: bool = False) -> User | None:
    query = sa.select(User).where(User.id == user_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def taken_identity(
    session: AsyncSession, *, username: str | None, email: str | None, except_id: int | None = None
) -> tuple[bool, bool]:
    """Whether `username` / `email` already belong to another user (case-insensitive)."""
    conditions = []
    if username:
        conditions.append(sa.func.lower(User.username) == username.lower())
    if email:
        conditions.append(sa.func.lower(User.email) == email.lower())
    if not conditions:
        return False, False
    query = sa.select(User.username, User.email).where(sa.or_(*conditions))
    if except_id is not None:
        query = query.where(User.id != except_id)
    rows = (await session.execute(query)).all()
    return (
        any(username and r.username.lower() == username.lower() for r in rows),
        any(email and r.email.lower() == email.lower() for r in rows),
    )


async def recent_failures(
    session: AsyncSession, *, since: datetime, account: str | None = None, ip: str | None = None
) -> list[datetime]:
    """Times of failed logins since `since` for one account (after its last success) or one IP."""
    query = sa.select(LoginAttempt.attempted_at).where(LoginAttempt.succeeded.is_(False))
    if account is not None:
        last_success = await session.scalar(
            sa.select(sa.func.max(LoginAttempt.attempted_at)).where(
                LoginAttempt.account == account, LoginAttempt.succeeded.is_(True)
            )
        )
        if last_success is not None and last_success > since:
            since = last_success
        query = query.where(LoginAttempt.account == account)
    if ip is not None:
        query = query.where(LoginAttempt.ip == ip)
    query = query.where(LoginAttempt.attempted_at > since).order_by(LoginAttempt.attempted_at)
    return list((await session.scalars(query)).all())


async def refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update())


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )


async def revoke_all_for_user(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        sa.update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=sa.func.now())
    )


async def token_states(session: AsyncSession) -> list[tuple[int, bool, int]]:
    """Users whose older tokens must be refused (deactivated, or version bumped)."""
    rows = await session.execute(
        sa.select(User.id, User.is_active, User.token_version).where(
            sa.or_(User.is_active.is_(False), User.token_version > 0)
        )
    )
    return [(r.id, r.is_active, r.token_version) for r in rows]


async def any_active_admin(session: AsyncSession) -> bool:
    return bool(await session.scalar(sa.select(sa.exists().where(User.role == "admin", User.is_active.is_(True)))))


async def client_ref(session: AsyncSession, client_id: int) -> ClientRef | None:
    return await session.scalar(
        sa.select(ClientRef).where(ClientRef.client_id == client_id).execution_options(populate_existing=True)
    )


async def upsert_client_ref(
    session: AsyncSession, *, client_id: int, nom_entreprise: str, is_active: bool, updated_at: datetime
) -> None:
    """Insert or refresh one replica row, unless it already holds newer news of that organisation."""
    insert = pg_insert(ClientRef).values(
        client_id=client_id, nom_entreprise=nom_entreprise, is_active=is_active, updated_at=updated_at
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[ClientRef.client_id],
            set_={
                "nom_entreprise": insert.excluded.nom_entreprise,
                "is_active": insert.excluded.is_active,
                "updated_at": insert.excluded.updated_at,
            },
            where=ClientRef.updated_at <= insert.excluded.updated_at,
        )
    )
