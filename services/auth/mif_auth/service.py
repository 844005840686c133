"""Business rules of the auth service; the only place that writes outbox events."""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import repository as repo
from mif_auth.config import AuthSettings
from mif_auth.events import (
    SignInAttemptsFailed,
    UserActivated,
    UserCreated,
    UserDeactivated,
    UserEvent,
    UserUpdated,
)
from mif_auth.keys import KeyRing
from mif_auth.models import ClientRef, LoginAttempt, RefreshToken, User
from mif_auth.passwords import hash_password, needs_rehash, policy_failures, policy_refusal, verify_password
from mif_auth.schemas import ProfileUpdate, TokenPair, UserAdminUpdate, UserCreate
from mif_auth.tokens import access_token, hash_refresh_token, new_refresh_token
from mif_common.datetimes import now
from mif_common.errors import (
    BadRequest,
    Conflict,
    DomainError,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from mif_common.events import add_event
from mif_common.owners import ReadThrough

logger = logging.getLogger(__name__)


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


# --- tokens -------------------------------------------------------------------------------------


async def issue_tokens(
    session: AsyncSession,
    *,
    user: User,
    settings: AuthSettings,
    keyring: KeyRing,
    client: ClientInfo,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    raw, digest = new_refresh_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=digest,
            expires_at=now() + timedelta(days=settings.refresh_token_ttl_days),
            ip=client.ip,
            user_agent=(client.user_agent or "")[:300] or None,
        )
    )
    await session.flush()
    return TokenPair(
        access_token=access_token(user, keyring=keyring, settings=settings),
        refresh_token=raw,
        expires_in=settings.access_token_ttl_seconds,
    )


# --- sign-in throttling (docs/auth.md, "Sign-in throttling") ------------------------------------
#
# Nothing here can be turned against an account's owner by someone who only knows its name:
# - one address guessing one account is locked out of THAT account (login_max_failures_per_account
#   failures within the window: 429 until the oldest leaves it); the owner elsewhere is not affected;
# - one address failing on many accounts (spraying) is locked out of all (login_max_failures_per_ip);
# - failures on one account from many addresses only slow it down: past login_delay_after_failures
#   failures, each attempt waits base · 2^k seconds (1, 2, 4, ... capped at login_delay_max_seconds)
#   after the last failure: refused with 429 and that Retry-After, nothing waits in the server. Attempts
#   passing that check are checked one at a time per account (a try-lock: a parallel one gets 429,
#   Retry-After 1), so parallel guesses from many addresses cannot share one delay slot;
# - an address the account signed in from recently is not slowed by failures from elsewhere;
# - an administrator's unlock makes the account's earlier failures stop counting.


def retry_delay(failures: int, settings: AuthSettings) -> int:
    """Seconds an attempt on an account waits after its last failure, for `failures` recent failures
    from every address: none below `login_delay_after_failures`, then base, 2·base, 4·base... capped."""
    beyond = failures - settings.login_delay_after_failures
    if beyond < 0:
        return 0
    growth: int = 1 << min(beyond, 16)
    return min(settings.login_delay_max_seconds, settings.login_delay_base_seconds * growth)


def _locked_until_out_of_window(failures: list[datetime], limit: int, window: timedelta, at: datetime) -> int:
    """Seconds until the oldest of the last `limit` failures leaves the window."""
    return int((failures[-limit] + window - at).total_seconds()) + 1


async def _throttle(
    session: AsyncSession,
    *,
    attempts: list[repo.Attempt],
    user: User | None,
    account: str,
    ip: str,
    at: datetime,
    settings: AuthSettings,
) -> TooManyRequests | None:
    """Why an attempt on this account from this address must not be checked now, or None. `attempts` are
    the account's recent ones (within the window, after an administrator's unlock)."""
    window = timedelta(seconds=settings.login_window_seconds)
    # Per (account, address): failures after this address's last success on the account.
    from_here = [a for a in attempts if a.ip == ip]
    last_success = max((a.attempted_at for a in from_here if a.succeeded), default=None)
    here = [
        a.attempted_at for a in from_here if not a.succeeded and (last_success is None or a.attempted_at > last_success)
    ]
    limit = settings.login_max_failures_per_account
    if len(here) >= limit:
        retry_after = _locked_until_out_of_window(here, limit, window, at)
        return TooManyRequests(
            f"Too many failed sign-in attempts on this account from this address; try again in {retry_after} "
            "seconds, or from elsewhere.",
            retry_after=retry_after,
        )
    failures = [a.attempted_at for a in attempts if not a.succeeded]
    if not failures:
        return None  # the usual case: nothing to slow down, no lock taken
    if (
        user is not None
        and settings.login_known_address_days > 0
        and await repo.signed_in_from(
            session, user_id=user.id, ip=ip, since=at - timedelta(days=settings.login_known_address_days)
        )
    ):
        return None  # the owner's usual address: failures from elsewhere do not slow it down
    wait = (failures[-1] + timedelta(seconds=retry_delay(len(failures), settings)) - at).total_seconds()
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        return TooManyRequests(
            f"This account has had many failed sign-in attempts; try again in {retry_after} seconds.",
            retry_after=retry_after,
        )
    key = f"user:{user.id}" if user is not None else f"account:{account}"
    if not await repo.try_lock_sign_in(session, key):
        return TooManyRequests(
            "Another sign-in attempt on this account is being checked; try again in 1 second.", retry_after=1
        )
    return None


async def _tell_owner_if_guessed(
    session: AsyncSession,
    *,
    user: User,
    failures: list[repo.Attempt],
    since: datetime,
    at: datetime,
    settings: AuthSettings,
) -> None:
    """Past `login_alert_after_failures` failures within the window (since `since`, or an administrator's
    unlock when later), publish once per window that the account is being guessed (notifications tells
    its owner)."""
    if len(failures) < settings.login_alert_after_failures:
        return
    window = timedelta(seconds=settings.login_window_seconds)
    if not await repo.claim_alert(session, user_id=user.id, at=at, unless_since=at - window):
        return
    guard = await repo.sign_in_guard(session, user.id)  # the row the claim just wrote
    if guard is not None and guard.unlocked_at is not None and guard.unlocked_at > since:
        since = guard.unlocked_at
    await add_event(
        session,
        SignInAttemptsFailed(
            user_id=user.id,
            failures=len(failures),
            addresses=len({a.ip for a in failures}),
            window_seconds=settings.login_window_seconds,
            since=since,
            occurred_at=at,
        ),
        subject=user.id,
    )
    logger.warning(
        "sign-in: %d failures on user %s from %d addresses since %s: owner told",
        len(failures),
        user.id,
        len({a.ip for a in failures}),
        since.isoformat(),
    )


async def login(
    session: AsyncSession,
    *,
    identifier: str,
    password: str,
    settings: AuthSettings,
    keyring: KeyRing,
    client: ClientInfo,
) -> TokenPair | Refusal:
    """Sign in by username or e-mail; attempts are recorded and throttled (see above)."""
    account = identifier.strip().lower()[:254]
    at = now()
    window = timedelta(seconds=settings.login_window_seconds)
    since = at - window
    # Spraying: an address with too many failures, whatever the accounts, is refused before any lookup.
    from_ip = await repo.failures_from_ip(session, ip=client.ip, since=since)
    if len(from_ip) >= settings.login_max_failures_per_ip:
        retry_after = _locked_until_out_of_window(from_ip, settings.login_max_failures_per_ip, window, at)
        return Refusal(
            TooManyRequests(
                f"Too many failed sign-in attempts from this address; try again in {retry_after} seconds.",
                retry_after=retry_after,
            )
        )
    user = await repo.user_by_login(session, account)
    # A known account's attempts count from an administrator's unlock when later (in the same statement).
    attempts = await repo.attempts_on(session, user_id=user.id if user else None, account=account, since=since)
    throttled = await _throttle(
        session, attempts=attempts, user=user, account=account, ip=client.ip, at=at, settings=settings
    )
    if throttled is not None:
        return Refusal(throttled)  # not recorded: no password was checked
    # An unknown account is checked against a dummy hash of the current scheme and parameters, at the same
    # cost, so timing does not reveal which accounts exist.
    hashing = settings.password_hashing
    valid = await verify_password(password, user.password_hash if user else None, hashing=hashing)
    # Only a right password learns why an existing account may not sign in.
    organisation = await organisation_refusal(session, user) if user and valid and user.is_active else None
    succeeded = bool(user and valid and user.is_active and organisation is None)
    attempt = repo.Attempt(now(), client.ip, succeeded)
    session.add(
        LoginAttempt(
            account=account,
            user_id=user.id if user else None,
            ip=client.ip,
            succeeded=succeeded,
            attempted_at=attempt.attempted_at,
        )
    )
    if not succeeded or user is None:
        await session.flush()
        if user is not None and not valid:
            failures = [a for a in attempts if not a.succeeded] + [attempt]
            await _tell_owner_if_guessed(
                session, user=user, failures=failures, since=since, at=attempt.attempted_at, settings=settings
            )
        if user is not None and valid and not user.is_active:
            return Refusal(Unauthorized("This account is deactivated; contact an administrator."))
        if organisation is not None:
            return Refusal(organisation)
        return Refusal(Unauthorized("Wrong username/e-mail or password."))
    user.last_login = now()
    if needs_rehash(user.password_hash, hashing):
        # A hash of an older scheme or parameters (bcrypt cost 12, ...): replaced now that the password is
        # known, in this sign-in's transaction. Not a password change: no event, tokens stay valid.
        previous = user.password_hash[:7]
        user.password_hash = await hash_password(password, hashing)
        logger.info("password hash of user %s upgraded from %s... to %s", user.id, previous, hashing.describe())
    return await issue_tokens(session, user=user, settings=settings, keyring=keyring, client=client)


async def unlock_sign_in(session: AsyncSession, *, user_id: int, actor: User) -> None:
    """An administrator ends an account's sign-in throttling: its failures until now no longer count
    (every address locked out of it, and the delay, end; an address spraying many accounts stays
    refused). The account's `sign_in_guard` row keeps who did it and when."""
    user = await get_user(session, user_id)
    await repo.unlock_sign_in(session, user_id=user.id, at=now(), by=actor.id)
    logger.info("sign-in throttling of user %s cleared by administrator %s", user.id, actor.id)


async def refresh(
    session: AsyncSession, *, raw_token: str, settings: AuthSettings, keyring: KeyRing, client: ClientInfo
) -> TokenPair | Refusal:
    """Rotate a refresh token. Presenting an already rotated token revokes its whole family."""
    stored = await repo.refresh_token_by_hash(session, hash_refresh_token(raw_token))
    if stored is None:
        return Refusal(Unauthorized("Unknown refresh token; sign in again."))
    if stored.used_at is not None or stored.revoked_at is not None:
        await repo.revoke_family(session, stored.family_id)
        await session.flush()
        return Refusal(Unauthorized("This refresh token was already used or revoked; sign in again."))
    if stored.expires_at <= now():
        return Refusal(Unauthorized("The refresh token has expired; sign in again."))
    user = await repo.user_by_id(session, stored.user_id)
    if user is None or not user.is_active:
        await repo.revoke_family(session, stored.family_id)
        return Refusal(Unauthorized("This account is deactivated; contact an administrator."))
    organisation = await organisation_refusal(session, user)
    if organisation is not None:
        await repo.revoke_family(session, stored.family_id)
        return Refusal(organisation)
    stored.used_at = now()
    return await issue_tokens(
        session, user=user, settings=settings, keyring=keyring, client=client, family_id=stored.family_id
    )


async def logout(session: AsyncSession, *, raw_token: str) -> None:
    """Revoke the refresh token's family; unknown tokens are ignored (nothing to reveal)."""
    stored = await repo.refresh_token_by_hash(session, hash_refresh_token(raw_token))
    if stored is not None:
        await repo.revoke_family(session, stored.family_id)


async def change_password(
    session: AsyncSession,
    *,
    user: User,
    current_password: str,
    new_password: str,
    settings: AuthSettings,
    keyring: KeyRing,
    client: ClientInfo,
) -> TokenPair:
    """Change one's password; every other session ends, a fresh token pair is returned."""
    if not await verify_password(current_password, user.password_hash, hashing=settings.password_hashing):
        raise BadRequest(
            "The current password is wrong.", errors=[{"field": "current_password", "message": "wrong password"}]
        )
    await _set_password(session, user=user, password=new_password, settings=settings, field="new_password")
    return await issue_tokens(session, user=user, settings=settings, keyring=keyring, client=client)


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


# --- users --------------------------------------------------------------------------------------


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


# --- client organisations (owned by assets; replica in client_ref) ------------------------------


class _AssetsClient(BaseModel):
    """The fields auth needs from assets' `GET /api/v1/clients/{id}` answer."""

    model_config = ConfigDict(extra="ignore")

    id: int
    nom_entreprise: str
    is_active: bool
    date_modification: AwareDatetime


async def remember_client_organisation(
    session: AsyncSession, *, client_id: int, nom_entreprise: str, is_active: bool, updated_at: datetime
) -> None:
    """Record what assets says about an organisation (from its events or an answer to a question). When
    that deactivates or reactivates it, its users' access follows at once (`organisation_access_changed`)."""
    before = await repo.client_ref(session, client_id, for_update=True)
    # An organisation auth hears of for the first time was active as far as its users are concerned.
    was_active = True if before is None else before.is_active
    written = await repo.upsert_client_ref(
        session, client_id=client_id, nom_entreprise=nom_entreprise, is_active=is_active, updated_at=updated_at
    )
    if written and is_active != was_active:
        await organisation_access_changed(session, client_id=client_id, is_active=is_active)


async def organisation_access_changed(session: AsyncSession, *, client_id: int, is_active: bool) -> None:
    """An organisation was deactivated or reactivated: every user of it gets a new token version (so a
    token issued before stays refused, even after a reactivation) and an `auth.user.updated.v1` saying
    `organisation_active`, which the gateway's and the services' token states follow. A deactivation
    also ends their refresh tokens; sign-in is refused while it lasts (`organisation_refusal`)."""
    users = await repo.users_of_client(session, client_id)
    for user in users:
        user.token_version += 1
        user.updated_at = now()
        if not is_active:
            await repo.revoke_all_for_user(session, user.id)
    await session.flush()
    for user in users:
        await _publish(session, UserUpdated, user, changed=["organisation_active"], organisation_active=is_active)
    logger.info(
        "client organisation %s %s: %d users' tokens renewed",
        client_id,
        "reactivated" if is_active else "deactivated",
        len(users),
    )


def _assets_unavailable() -> ClientCheckUnavailable:
    return ClientCheckUnavailable(
        "Cannot check the client organisation now: the assets service did not answer. Try again in a moment.",
        headers={"Retry-After": "5"},
    )


class AssetsOrganisations(ReadThrough[int, ClientRef, _AssetsClient]):
    """The client organisations replica, asking assets on a miss as the caller (assets applies the
    caller's row-level rules): None when assets does not know the organisation."""

    def base_url(self, settings: AuthSettings) -> str:
        return settings.assets_url

    async def replica(self, session: AsyncSession, key: int) -> ClientRef | None:
        return await repo.client_ref(session, key)

    async def ask(self, key: int) -> _AssetsClient | None:
        return await self.get(f"/api/v1/clients/{key}", _AssetsClient, unavailable=_assets_unavailable())

    async def remember(self, session: AsyncSession, answer: _AssetsClient) -> None:
        await remember_client_organisation(
            session,
            client_id=answer.id,
            nom_entreprise=answer.nom_entreprise,
            is_active=answer.is_active,
            updated_at=answer.date_modification,
        )


async def _check_client_organisation(
    session: AsyncSession,
    *,
    client_id: int,
    assets: AssetsOrganisations | None,
) -> None:
    """A client user must belong to an organisation that assets knows and that is active (without
    `assets`, an organisation missing from the replica cannot be checked: 503)."""
    if assets is not None:
        ref = await assets.known(session, client_id)
    elif (ref := await repo.client_ref(session, client_id)) is None:
        raise _assets_unavailable()
    if ref is None:
        raise UnknownClientOrganisation(
            f"No client organisation with id {client_id}; create the organisation first, then its users.",
            errors=[{"field": "client_id", "message": "unknown client organisation"}],
        )
    if not ref.is_active:
        raise UnknownClientOrganisation(
            f"The client organisation '{ref.nom_entreprise}' (id {client_id}) is deactivated; "
            "reactivate it before giving it users.",
            errors=[{"field": "client_id", "message": "deactivated client organisation"}],
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
