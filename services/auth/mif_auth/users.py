"""User accounts: create, read, edit (an administrator; the user its own profile), deactivate,
reactivate, and the first administrator."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import repository as repo
from mif_auth.config import AuthSettings
from mif_auth.events import UserActivated, UserCreated, UserDeactivated, UserUpdated
from mif_auth.models import User
from mif_auth.owners import AssetsOrganisations, _check_client_organisation
from mif_auth.passwords import hash_password, verify_password
from mif_auth.schemas import ProfileUpdate, UserAdminUpdate, UserCreate
from mif_auth.service import IdentityTaken, UserNotFound, _publish, check_password_policy
from mif_common.datetimes import now
from mif_common.errors import BadRequest, Conflict, Unprocessable


async def _set_password(
    session: AsyncSession, *, user: User, password: str, settings: AuthSettings, field: str
) -> None:
    check_password_policy(password, username=user.username, email=user.email, field=field)
    user.password_hash = await hash_password(password, settings.password_hashing)
    user.token_version += 1
    user.updated_at = now()
    await repo.revoke_all_for_user(session, user.id)
    await session.flush()
    await _publish(session, UserUpdated, user, changed=["password"])


async def _ensure_free(
    session: AsyncSession, *, username: str | None, email: str | None, except_id: int | None
) -> None:
    username_taken, email_taken = await repo.taken_identity(
        session, username=username, email=email, except_id=except_id
    )
    errors = []
    if username_taken:
        errors.append({"field": "username", "message": f"the username '{username}' is already taken"})
    if email_taken:
        errors.append({"field": "email", "message": f"the e-mail address '{email}' is already used"})
    if errors:
        sentence = " and ".join(e["message"] for e in errors)
        # Upper-case the first letter only: the quoted username keeps its case.
        raise IdentityTaken(sentence[0].upper() + sentence[1:] + ".", errors=errors)


def _check_client_link(role: str, client_id: int | None) -> None:
    if role == "client" and client_id is None:
        raise Unprocessable(
            "A user with role 'client' needs the client_id of the organisation it belongs to.",
            errors=[{"field": "client_id", "message": "required for role client"}],
        )
    if role != "client" and client_id is not None:
        raise Unprocessable(
            f"Only users with role 'client' belong to a client organisation, not role '{role}'.",
            errors=[{"field": "client_id", "message": "only allowed for role client"}],
        )


async def _flush_unique(session: AsyncSession) -> None:
    """Flush, turning a lost race on a unique index into the same 409 as the pre-check."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise IdentityTaken("The username or e-mail address is already taken.") from exc


async def create_user(
    session: AsyncSession,
    *,
    data: UserCreate,
    settings: AuthSettings,
    assets: AssetsOrganisations | None = None,
) -> User:
    """Create a user; a client user's organisation is checked against assets (`assets`, as the caller)."""
    _check_client_link(data.role, data.client_id)
    if data.client_id is not None:
        await _check_client_organisation(session, client_id=data.client_id, assets=assets)
    await _ensure_free(session, username=data.username, email=str(data.email), except_id=None)
    check_password_policy(data.password, username=data.username, email=str(data.email), field="password")
    user = User(
        username=data.username,
        email=str(data.email).lower(),
        full_name=data.full_name,
        role=data.role,
        client_id=data.client_id,
        is_active=True,
        token_version=0,
        password_hash=await hash_password(data.password, settings.password_hashing),
    )
    session.add(user)
    await _flush_unique(session)
    await session.refresh(user)
    await _publish(session, UserCreated, user)
    return user


async def get_user(session: AsyncSession, user_id: int, *, for_update: bool = False) -> User:
    user = await repo.user_by_id(session, user_id, for_update=for_update)
    if user is None:
        raise UserNotFound(f"No user with id {user_id}.")
    return user


async def update_user(
    session: AsyncSession,
    *,
    user_id: int,
    data: UserAdminUpdate,
    actor: User,
    settings: AuthSettings,
    assets: AssetsOrganisations | None = None,
) -> User:
    """Admin edit; a role or organisation change ends the user's current access tokens at once."""
    user = await get_user(session, user_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    if "email" in changes and changes["email"] is not None:
        changes["email"] = str(changes["email"]).lower()
    changes = {k: v for k, v in changes.items() if v is not None and getattr(user, k) != v}
    role = changes.get("role", user.role)
    client_id = changes.get("client_id", user.client_id if role == "client" else None)
    if role != "client" and "client_id" not in changes:
        client_id = None
    _check_client_link(role, client_id)
    if user.id == actor.id and role != "admin":
        raise Conflict("You cannot remove your own admin role; ask another administrator.")
    if client_id is not None and (client_id != user.client_id or user.role != "client"):
        await _check_client_organisation(session, client_id=client_id, assets=assets)
    await _ensure_free(session, username=changes.get("username"), email=changes.get("email"), except_id=user.id)
    if client_id != user.client_id:
        changes["client_id"] = client_id
    if not changes:
        return user
    for key, value in changes.items():
        setattr(user, key, value)
    if {"role", "client_id"} & changes.keys():
        user.token_version += 1
    user.updated_at = now()
    await _flush_unique(session)
    await _publish(session, UserUpdated, user, changed=sorted(changes))
    return user


async def update_profile(session: AsyncSession, *, user: User, data: ProfileUpdate, settings: AuthSettings) -> User:
    """A user edits their own name and password (the password needs the current one)."""
    if data.full_name is not None and data.full_name != user.full_name:
        user.full_name = data.full_name
        user.updated_at = now()
        await session.flush()
        await _publish(session, UserUpdated, user, changed=["full_name"])
    if data.password is not None:
        if data.current_password is None or not await verify_password(
            data.current_password, user.password_hash, hashing=settings.password_hashing
        ):
            raise BadRequest(
                "Changing the password needs the correct current_password.",
                errors=[{"field": "current_password", "message": "missing or wrong"}],
            )
        await _set_password(session, user=user, password=data.password, settings=settings, field="password")
    return user


async def deactivate_user(session: AsyncSession, *, user_id: int, actor: User) -> None:
    """Soft delete: the account stays for history, its sessions and tokens end now."""
    user = await get_user(session, user_id, for_update=True)
    if user.id == actor.id:
        raise Conflict("You cannot deactivate your own account.")
    if not user.is_active:
        return
    user.is_active = False
    user.token_version += 1
    user.updated_at = now()
    await repo.revoke_all_for_user(session, user.id)
    await session.flush()
    await _publish(session, UserDeactivated, user)


async def activate_user(session: AsyncSession, *, user_id: int) -> User:
    user = await get_user(session, user_id, for_update=True)
    if not user.is_active:
        user.is_active = True
        # Every state change bumps the version, so "newest version wins" is exact for token checkers.
        user.token_version += 1
        user.updated_at = now()
        await session.flush()
        await _publish(session, UserActivated, user)
    return user


async def bootstrap_admin(
    session: AsyncSession, *, username: str, email: str, full_name: str, password: str, settings: AuthSettings
) -> User | None:
    """Create the first admin unless an active one exists; returns it, or None when nothing was done."""
    if await repo.any_active_admin(session):
        return None
    return await create_user(
        session,
        data=UserCreate(username=username, full_name=full_name, email=email, role="admin", password=password),
        settings=settings,
    )
