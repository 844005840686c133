"""What the auth service's concept modules share: refusals, the clock, the password policy, a user's
event, and whether a client user's organisation is active.

The rules live in one module per concept (the only places that write outbox events; they flush, never
commit): `sign_in` (tokens, sign-in and its throttling, refresh, sign-out, password change), `users`
(accounts), `owners` (asking assets about a client organisation on a miss) and `replicas` (assets'
facts about client organisations)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import repository as repo
from mif_auth.events import UserEvent
from mif_auth.models import User
from mif_auth.passwords import policy_failures, policy_refusal
from mif_common.errors import Conflict, DomainError, NotFound, ServiceUnavailable, Unauthorized, Unprocessable
from mif_common.events import add_event


class PasswordPolicyError(Unprocessable):
    slug = "password-policy"
    title = "Password too weak"


class IdentityTaken(Conflict):
    slug = "identity-taken"


class UserNotFound(NotFound):
    pass


class UnknownClientOrganisation(Unprocessable):
    slug = "unknown-client-organisation"


class ClientCheckUnavailable(ServiceUnavailable):
    slug = "client-check-unavailable"


@dataclass(frozen=True)
class Refusal:
    """A refused login or refresh. Returned rather than raised: the attempt or the revocation that
    it recorded must still commit."""

    error: DomainError


@dataclass(frozen=True)
class ClientInfo:
    ip: str
    user_agent: str | None


def check_password_policy(password: str, *, username: str | None, email: str | None, field: str) -> None:
    failures = policy_failures(password, username=username, email=email)
    if failures:
        raise PasswordPolicyError(
            policy_refusal(failures), errors=[{"field": field, "message": rule} for rule in failures]
        )


async def _publish(session: AsyncSession, event_cls: type[UserEvent], user: User, **extra: object) -> None:
    if "organisation_active" not in extra:
        extra["organisation_active"] = await organisation_active(session, user)
    await add_event(
        session,
        event_cls(
            user_id=user.id,
            username=user.username,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            client_id=user.client_id,
            is_active=user.is_active,
            token_version=user.token_version,
            **extra,
        ),
        subject=user.id,
    )


async def organisation_active(session: AsyncSession, user: User) -> bool:
    """False for a client user whose organisation is deactivated (true while auth has no news of it)."""
    if user.client_id is None:
        return True
    ref = await repo.client_ref(session, user.client_id)
    return ref is None or ref.is_active


async def organisation_refusal(session: AsyncSession, user: User) -> Unauthorized | None:
    """The refusal of a client user whose organisation is deactivated, or None."""
    if user.client_id is None:
        return None
    ref = await repo.client_ref(session, user.client_id)
    if ref is None or ref.is_active:
        return None
    return Unauthorized(
        f"The client organisation '{ref.nom_entreprise}' of this account is deactivated; "
        "contact your maintenance provider."
    )
