"""Signing in: issuing tokens, sign-in throttling, refresh, sign-out, and changing one's password."""

from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import repository as repo
from mif_auth.config import AuthSettings
from mif_auth.events import SignInAttemptsFailed
from mif_auth.keys import KeyRing
from mif_auth.models import LoginAttempt, RefreshToken, User
from mif_auth.passwords import hash_password, needs_rehash, verify_password
from mif_auth.schemas import TokenPair
from mif_auth.service import ClientInfo, Refusal, organisation_refusal
from mif_auth.tokens import access_token, hash_refresh_token, new_refresh_token
from mif_auth.users import _set_password, get_user
from mif_common.datetimes import now
from mif_common.errors import BadRequest, TooManyRequests, Unauthorized
from mif_common.events import add_event

logger = logging.getLogger(__name__)


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
