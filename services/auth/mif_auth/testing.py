"""Test helpers other suites reuse (auth's own tests, its consumers' tests, end-to-end tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.events import SignInAttemptsFailed, UserEvent
from mif_auth.replicas import remember_client_organisation
from mif_common.testing.events import example

# Satisfies the password policy; used for every test account.
PASSWORD = "Str0ng!Passw0rd"

MakeUser = Callable[..., Awaitable[dict[str, Any]]]


async def known_client(
    session: AsyncSession, client_id: int, *, nom: str | None = None, is_active: bool = True
) -> None:
    """Put a client organisation in auth's replica, as an `assets.client.*` event would."""
    await remember_client_organisation(
        session,
        client_id=client_id,
        nom_entreprise=nom or f"Organisation {client_id}",
        is_active=is_active,
        updated_at=datetime.now(UTC),
    )


def user_data(user_id: int, role: str = "technicien", *, is_active: bool = True, **fields: Any) -> dict[str, Any]:
    """`data` of an `auth.user.<verb>.v1` event, checked against `UserEvent`; `fields` set any other key."""
    return example(
        UserEvent,
        {
            "user_id": user_id,
            "username": f"{role[:4]}{user_id}",
            "email": f"{role[:4]}{user_id}@example.ma",
            "full_name": f"{role.title()} n°{user_id}",
            "role": role,
            "client_id": None,
            "is_active": is_active,
            "token_version": 0,
        }
        | fields,
    )


def sign_in_alert_data(
    user_id: int, *, failures: int = 5, addresses: int = 3, occurred_at: datetime | None = None, **fields: Any
) -> dict[str, Any]:
    """`data` of an `auth.sign_in_attempts.failed.v1` event (a 15-minute window ending at `occurred_at`),
    checked against `SignInAttemptsFailed`; `fields` set any other key."""
    at = occurred_at or datetime.now(UTC)
    return example(
        SignInAttemptsFailed,
        {
            "user_id": user_id,
            "failures": failures,
            "addresses": addresses,
            "window_seconds": 900,
            "since": at - timedelta(seconds=900),
            "occurred_at": at,
        }
        | fields,
    )
