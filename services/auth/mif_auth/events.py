"""Events the auth service publishes. Every change that must end a user's access tokens bumps its
`token_version`; `auth.user.updated.v1` is also published for each user of a client organisation that is
deactivated or reactivated (`changed: ["organisation_active"]`). The gateway and the services keep their
token states from these events (docs/auth.md). `auth.sign_in_attempts.failed.v1` tells an account's
owner that its password is being guessed (docs/auth.md, "Sign-in throttling")."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from mif_common.events import EventPayload


class UserEvent(EventPayload):
    user_id: int
    username: str
    email: str
    full_name: str
    role: str
    client_id: int | None = None
    is_active: bool
    token_version: int
    # False while the client organisation of a client user is deactivated (its users may not sign in,
    # their tokens are refused); always true for other roles. Optional within v1: absent means true.
    organisation_active: bool = True


class UserCreated(UserEvent):
    event_type: ClassVar[str] = "auth.user.created.v1"


class UserUpdated(UserEvent):
    event_type: ClassVar[str] = "auth.user.updated.v1"
    changed: list[str] = Field(default_factory=list)


class UserDeactivated(UserEvent):
    event_type: ClassVar[str] = "auth.user.deactivated.v1"


class UserActivated(UserEvent):
    event_type: ClassVar[str] = "auth.user.activated.v1"


class SignInAttemptsFailed(EventPayload):
    """Someone is guessing an account's password: `failures` sign-ins with a wrong password were made on
    the account `user_id` from `addresses` distinct client addresses within the last `window_seconds`
    (counted from `since`, the later of the window's start and an administrator's unlock). Published
    when the count reaches `MIF_AUTH_LOGIN_ALERT_AFTER_FAILURES` (5), at most once per window per
    account; notifications tells the account's owner in-app and by e-mail. Its entity is not `user` so
    that the token-state feeds bound to `auth.user.#` do not receive it."""

    event_type: ClassVar[str] = "auth.sign_in_attempts.failed.v1"
    user_id: int
    failures: int
    addresses: int
    window_seconds: int
    since: datetime
    occurred_at: datetime


ALL_EVENTS = (UserCreated, UserUpdated, UserDeactivated, UserActivated, SignInAttemptsFailed)
