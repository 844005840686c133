"""Events the auth service publishes."""

from __future__ import annotations

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


class UserCreated(UserEvent):
    event_type: ClassVar[str] = "auth.user.created.v1"


class UserUpdated(UserEvent):
    event_type: ClassVar[str] = "auth.user.updated.v1"
    changed: list[str] = Field(default_factory=list)


class UserDeactivated(UserEvent):
    event_type: ClassVar[str] = "auth.user.deactivated.v1"


class UserActivated(UserEvent):
    event_type: ClassVar[str] = "auth.user.activated.v1"


ALL_EVENTS = (UserCreated, UserUpdated, UserDeactivated, UserActivated)
