"""Queries of the auth service."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.models import ClientRef, LoginAttempt, RefreshToken, SignInGuard, User
from mif_auth.schemas import UserOut
from mif_common.listing import ListQuery, model_columns
from mif_common.pagination import Sortable
from mif_common.replicas import upsert_if_newer


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


@dataclass(frozen=True, slots=True)
class Attempt:
    attempted_at: datetime
    ip: str
    succeeded: bool


async def attempts_on(session: AsyncSession, *, user_id: int | None, account: str, since: datetime) -> list[Attempt]:
    """The checked sign-ins on one account since `since`, oldest first: by id for an existing account
    (whether its username or its e-mail was typed), counted from an administrator's unlock of it instead
    when that is later (earlier failures no longer count); by what was typed for an unknown one."""
    query = sa.select(LoginAttempt.attempted_at, LoginAttempt.ip, LoginAttempt.succeeded)
    if user_id is not None:
        unlocked_at = sa.select(SignInGuard.unlocked_at).where(SignInGuard.user_id == user_id).scalar_subquery()
        # GREATEST ignores a NULL: an account never unlocked counts from `since`.
        start = sa.func.greatest(sa.literal(since, type_=LoginAttempt.attempted_at.type), unlocked_at)
        query = query.where(LoginAttempt.user_id == user_id, LoginAttempt.attempted_at > start)
    else:
        query = query.where(
            LoginAttempt.account == account, LoginAttempt.user_id.is_(None), LoginAttempt.attempted_at > since
        )
    rows = await session.execute(query.order_by(LoginAttempt.attempted_at))
    return [Attempt(r.attempted_at, r.ip, r.succeeded) for r in rows]


async def failures_from_ip(session: AsyncSession, *, ip: str, since: datetime) -> list[datetime]:
    """Times of failed sign-ins from one address since `since`, whatever the account, oldest first."""
    query = (
        sa.select(LoginAttempt.attempted_at)
        .where(LoginAttempt.ip == ip, LoginAttempt.succeeded.is_(False), LoginAttempt.attempted_at > since)
        .order_by(LoginAttempt.attempted_at)
    )
    return list((await session.scalars(query)).all())


async def signed_in_from(session: AsyncSession, *, user_id: int, ip: str, since: datetime) -> bool:
    """Whether the account signed in successfully from this address since `since`."""
    query = sa.exists().where(
        LoginAttempt.user_id == user_id,
        LoginAttempt.ip == ip,
        LoginAttempt.succeeded.is_(True),
        LoginAttempt.attempted_at > since,
    )
    return bool(await session.scalar(sa.select(query)))


# Advisory locks of sign-in checks: the two-key form, this class and a hash of the account (a collision
# only makes an attempt retry a second later). Distinct from the one-key locks of mif_common.provision.
_SIGN_IN_LOCK_CLASS = 0x4D494641


async def try_lock_sign_in(session: AsyncSession, key: str) -> bool:
    """Take the account's sign-in lock until the transaction ends, or False at once if another
    transaction holds it (never waits)."""
    locked = await session.scalar(
        sa.select(sa.func.pg_try_advisory_xact_lock(_SIGN_IN_LOCK_CLASS, sa.func.hashtext(key)))
    )
    return bool(locked)


async def sign_in_guard(session: AsyncSession, user_id: int) -> SignInGuard | None:
    return await session.scalar(
        sa.select(SignInGuard).where(SignInGuard.user_id == user_id).execution_options(populate_existing=True)
    )


async def unlock_sign_in(session: AsyncSession, *, user_id: int, at: datetime, by: int) -> None:
    """Record an administrator's unlock: the account's failures before `at` no longer count."""
    insert = pg_insert(SignInGuard).values(user_id=user_id, unlocked_at=at, unlocked_by=by)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[SignInGuard.user_id],
            set_={"unlocked_at": insert.excluded.unlocked_at, "unlocked_by": insert.excluded.unlocked_by},
        )
    )


async def claim_alert(session: AsyncSession, *, user_id: int, at: datetime, unless_since: datetime) -> bool:
    """Record a notice to the account's owner at `at`, unless one was recorded after `unless_since`.
    True when this call recorded it (concurrent callers: exactly one wins, the row lock decides)."""
    insert = pg_insert(SignInGuard).values(user_id=user_id, alerted_at=at)
    claimed = await session.scalar(
        insert.on_conflict_do_update(
            index_elements=[SignInGuard.user_id],
            set_={"alerted_at": insert.excluded.alerted_at},
            where=sa.or_(SignInGuard.alerted_at.is_(None), SignInGuard.alerted_at <= unless_since),
        ).returning(SignInGuard.user_id)
    )
    return claimed is not None


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


def _token_state_query() -> sa.Select[int, bool, int, bool]:
    # A client user's organisation counts as active while auth has no news of it (the replica is
    # filled before any user of it can be created).
    organisation_active = sa.func.coalesce(ClientRef.is_active, sa.true()).label("organisation_active")
    return sa.select(User.id, User.is_active, User.token_version, organisation_active).outerjoin(
        ClientRef, ClientRef.client_id == User.client_id
    )


async def token_states(session: AsyncSession) -> list[tuple[int, bool, int, bool]]:
    """Every user's (id, is_active, token_version, organisation_active)."""
    rows = await session.execute(_token_state_query().order_by(User.id))
    return [(r.id, r.is_active, r.token_version, r.organisation_active) for r in rows]


async def token_state(session: AsyncSession, user_id: int) -> tuple[int, bool, int, bool] | None:
    row = (await session.execute(_token_state_query().where(User.id == user_id))).one_or_none()
    return None if row is None else (row.id, row.is_active, row.token_version, row.organisation_active)


# The users list: one statement per request, compiled once per shape, rows as `UserOut`'s fields
# (mif_common.listing). `q` has no index to find its matches with (a scan either way), hence no `search`.
def users_list(sort: Mapping[str, Sortable]) -> ListQuery:
    return ListQuery(
        columns=model_columns(UserOut, User),
        source=User,
        key=User.id,
        terms={
            "role": lambda: User.role == sa.bindparam("role", type_=sa.String()),
            "is_active": lambda: User.is_active == sa.bindparam("is_active", type_=sa.Boolean()),  # NOT NULL
            "client_id": lambda: User.client_id == sa.bindparam("client_id", type_=sa.BigInteger()),
            # Case-insensitive substring of the username, e-mail or name (`%` and `_` in `q` are wildcards).
            "q": lambda: sa.or_(
                *(
                    sa.func.lower(column).like(sa.bindparam("q", type_=sa.String()))
                    for column in (User.username, User.email, User.full_name)
                )
            ),
        },
        sort=sort,
        default=[User.id],
        search=(),
    )


async def users_of_client(session: AsyncSession, client_id: int) -> list[User]:
    """The users of one client organisation, locked for update (in id order: no deadlock between two)."""
    return list(
        (
            await session.scalars(
                sa.select(User).where(User.client_id == client_id).order_by(User.id).with_for_update()
            )
        ).all()
    )


async def any_active_admin(session: AsyncSession) -> bool:
    return bool(await session.scalar(sa.select(sa.exists().where(User.role == "admin", User.is_active.is_(True)))))


async def client_ref(session: AsyncSession, client_id: int, *, for_update: bool = False) -> ClientRef | None:
    query = sa.select(ClientRef).where(ClientRef.client_id == client_id).execution_options(populate_existing=True)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def upsert_client_ref(
    session: AsyncSession, *, client_id: int, nom_entreprise: str, is_active: bool, updated_at: datetime
) -> bool:
    """Insert or refresh one replica row, unless it already holds newer news of that organisation; False
    when stale (nothing written)."""
    values = {
        "client_id": client_id,
        "nom_entreprise": nom_entreprise,
        "is_active": is_active,
        "updated_at": updated_at,
    }
    return await upsert_if_newer(
        session, ClientRef, key=ClientRef.client_id, freshness=ClientRef.updated_at, values=values
    )
