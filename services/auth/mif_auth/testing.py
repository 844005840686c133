"""Test helpers other suites reuse (auth's own tests, end-to-end tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.replicas import remember_client_organisation

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
