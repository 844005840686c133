"""Reactions to assets' facts about client organisations: the replica, and what a deactivated (or
reactivated) organisation changes for its users."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import repository as repo
from mif_auth.events import UserUpdated
from mif_auth.service import _publish
from mif_common.datetimes import now

logger = logging.getLogger(__name__)


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
