"""Reactions to other services' facts: the user and technician replicas, and the notifications facts
call for.

Who is told what (DOMAIN.md §4, §5, §7), recipients resolved from the local replicas only:

| fact | type | recipients |
| --- | --- | --- |
| intervention created already assigned, or assigned | affectation | the technician's user |
| intervention started / cancelled | information | the requester and the active users of its client organisation |
| intervention closed | cloture | the same |
| intervention late | retard | the technician's user and every active manager (admin, responsable) |
| plan occurrence reminder | rappel | the plan technician's user and every active manager |
| plan overdue | retard | the same |
| plan suspended by planning's circuit breaker | information | every active manager |
| document uploaded | information | the requester, the technician's user, the client organisation's users |
| user created | information | the new user (welcome) |
| sign-in failures on an account (auth, once per window) | information | the account's user |
| a part's stock fell to its minimum (inventory, once per crossing) | stock_bas | every active manager |
| an export job's file is ready (reports) | rapport_pret | the job's requester |
| an export job failed (reports) | rapport_echoue | the job's requester |

Nobody is told about their own action (the fact's actor, the uploader), deactivated users are never
notified, and each (event, user) pair gives one notification at most. Lateness (a late intervention, an
overdue occurrence) reaches each user once per item (`item_key`), and its e-mails go out in one digest
per recipient and interval (`delivery.DeliverySender.send_digests`), not one e-mail per item.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events import CloudEvent
from mif_notifications import messages
from mif_notifications import repository as repo
from mif_notifications.models import MANAGER_ROLES
from mif_notifications.schemas import (
    DocumentFact,
    DueFact,
    ExportCompletedFact,
    ExportFact,
    ExportFailedFact,
    InterventionFact,
    OccurrenceFact,
    OverdueFact,
    SignInFailuresFact,
    StockLowFact,
    SuspendedFact,
    TechnicienFact,
    UserFact,
)
from mif_notifications.service import ENDED, USER_REVOKED_CHANNEL, Origin, TechnicienInconnu, notify

logger = logging.getLogger(__name__)


async def _technicien_user(session: AsyncSession, technicien_id: int | None, *, required: bool) -> int | None:
    """The user behind a technician profile, from the replica."""
    if technicien_id is None:
        return None
    ref = await repo.technicien_ref(session, technicien_id)
    if ref is not None:
        return ref.user_id
    if required:
        raise TechnicienInconnu(f"technician {technicien_id} is not in the replica yet")
    logger.warning("technician %s is not in the replica: not notified", technicien_id)
    return None


async def _client_side(session: AsyncSession, *, requester_id: int | None, client_id: int | None) -> list[int | None]:
    """The requester and the active users of the client organisation."""
    users: list[int | None] = [requester_id]
    if client_id is not None:
        users.extend(await repo.active_client_users(session, client_id))
    return users


async def user_changed(session: AsyncSession, *, fact: UserFact, event: CloudEvent) -> bool:
    """Keep the user replica current (older news is dropped); a deactivation ends the user's live
    streams on every replica. Returns whether the fact was the latest."""
    fresh = await repo.upsert_user_ref(
        session,
        user_id=fact.user_id,
        username=fact.username,
        email=fact.email,
        full_name=fact.full_name,
        role=fact.role,
        client_id=fact.client_id,
        is_active=fact.is_active,
        event_time=event.time,
    )
    if fresh and not fact.is_active:
        await repo.announce(session, USER_REVOKED_CHANNEL, str(fact.user_id))
    return fresh


async def user_created(session: AsyncSession, *, fact: UserFact, event: CloudEvent) -> None:
    """A new account: a welcome notification."""
    fresh = await user_changed(session, fact=fact, event=event)
    if fresh and fact.is_active:
        await notify(session, user_ids=[fact.user_id], message=messages.welcome(fact), origin=Origin.of(event))


async def technicien_changed(session: AsyncSession, *, fact: TechnicienFact) -> None:
    await repo.upsert_technicien_ref(
        session,
        technicien_id=fact.technicien_id,
        user_id=fact.user_id,
        is_active=fact.is_active,
        version=fact.version,
    )


async def intervention_changed(session: AsyncSession, *, fact: InterventionFact, verb: str, event: CloudEvent) -> None:
    """Every interventions fact keeps the replica current; some notify (see the module's table)."""
    tracked = await repo.track_intervention(
        session,
        intervention_id=fact.intervention_id,
        titre=fact.titre,
        client_id=fact.client_id,
        technicien_id=fact.technicien_id,
        statut=fact.statut,
        occurred_at=fact.occurred_at,
        requester_id=fact.actor_id if verb == "created" else None,
    )
    ref, origin = tracked, Origin.of(event)
    if verb in ("created", "assigned"):
        if fact.technicien_id is None or fact.statut != "affectee":
            return
        # A later fact already gave the intervention to someone else: this assignment is history.
        if not tracked.fresh and ref.technicien_id != fact.technicien_id:
            return
        user = await _technicien_user(session, fact.technicien_id, required=True)
        await notify(session, user_ids=[user], message=messages.assigned(fact), origin=origin, exclude=[fact.actor_id])
    elif verb in ("started", "closed", "cancelled"):
        message = {"started": messages.started, "closed": messages.closed, "cancelled": messages.cancelled}[verb](fact)
        users = await _client_side(session, requester_id=ref.requester_id, client_id=fact.client_id)
        await notify(session, user_ids=users, message=message, origin=origin, exclude=[fact.actor_id])
    elif verb == "late":
        # Closed meanwhile (a later fact we already hold): no longer late.
        if not tracked.fresh and ref.statut in ENDED:
            return
        users = [await _technicien_user(session, fact.technicien_id, required=False)]
        users.extend(await repo.active_users_with_roles(session, MANAGER_ROLES))
        await notify(
            session,
            user_ids=users,
            message=messages.late(fact),
            origin=origin,
            exclude=[fact.actor_id],
            item_key=f"retard-intervention:{fact.intervention_id}",
            digest=True,
        )


async def occurrence_reminder(session: AsyncSession, *, fact: OccurrenceFact, event: CloudEvent) -> None:
    users = [await _technicien_user(session, fact.technicien_id, required=False)]
    users.extend(await repo.active_users_with_roles(session, MANAGER_ROLES))
    message = messages.reminder(fact)
    await notify(session, user_ids=users, message=message, origin=Origin.of(event))


async def plan_overdue(session: AsyncSession, *, fact: OverdueFact, event: CloudEvent) -> None:
    users = [await _technicien_user(session, fact.technicien_id, required=False)]
    users.extend(await repo.active_users_with_roles(session, MANAGER_ROLES))
    message = messages.overdue(fact)
    await notify(
        session,
        user_ids=users,
        message=message,
        origin=Origin.of(event),
        item_key=f"retard-occurrence:{fact.occurrence_key}",
        digest=True,
    )


async def plan_suspended(session: AsyncSession, *, fact: SuspendedFact, event: CloudEvent) -> None:
    """planning's circuit breaker stopped a plan: every active manager is told, in-app and by e-mail (not
    in a digest: a manager has something to do), once per suspension."""
    managers = await repo.active_users_with_roles(session, MANAGER_ROLES)
    await notify(
        session,
        user_ids=managers,
        message=messages.plan_suspended(fact),
        origin=Origin.of(event),
        item_key=f"plan-suspendu:{fact.planning_id}:{fact.occurred_at.isoformat()}",
    )


async def rule_triggered(session: AsyncSession, *, fact: DueFact, event: CloudEvent) -> None:
    """A seuil or variation rule of planning opened a corrective intervention (a `corrective`
    `planning.occurrence.due.v1`): every active manager is told, in-app and by e-mail at once, once per
    occurrence key (planning sends one per episode). Other occurrences (preventive) notify nobody: the
    technician hears of the intervention when it is assigned."""
    if fact.type != "corrective":
        return
    managers = await repo.active_users_with_roles(session, MANAGER_ROLES)
    await notify(
        session,
        user_ids=managers,
        message=messages.rule_triggered(fact),
        origin=Origin.of(event),
        item_key=f"regle:{fact.occurrence_key}",
    )


async def stock_low(session: AsyncSession, *, fact: StockLowFact, event: CloudEvent) -> None:
    """A part's stock fell to its minimum: every active manager is told, in-app and by e-mail at once
    (not in a digest: someone has parts to order), the way a suspended plan reaches them. inventory
    publishes it once per crossing; the inbox and the (event, user) key make a redelivery a no-op, and the
    item key (the part and the crossing's time) does the same for a republication under another id."""
    managers = await repo.active_users_with_roles(session, MANAGER_ROLES)
    await notify(
        session,
        user_ids=managers,
        message=messages.stock_low(fact),
        origin=Origin.of(event),
        item_key=f"stock-bas:{fact.piece_id}:{fact.occurred_at.isoformat()}",
    )


async def sign_in_failures(session: AsyncSession, *, fact: SignInFailuresFact, event: CloudEvent) -> None:
    """Someone is guessing a user's password: that user is told, in-app and by e-mail at once (not in a
    digest: they may have a password to change). auth publishes it once per window; a republication of
    the same fact (`occurred_at`) reaches the user once too."""
    await notify(
        session,
        user_ids=[fact.user_id],
        message=messages.sign_in_failures(fact),
        origin=Origin.of(event),
        item_key=f"connexions-echouees:{fact.occurred_at.isoformat()}",
    )


async def _tell_requester(
    session: AsyncSession, *, fact: ExportFact, outcome: str, message: messages.Message, event: CloudEvent
) -> None:
    """An export job ended: its requester alone is told, in-app and on their channels at once (they are
    waiting for it), like a sign-in alert. A requester the user replica does not know yet is told in-app,
    the e-mail waiting for the address, as for every per-user fact."""
    await notify(
        session,
        user_ids=[fact.user_id],
        message=message,
        origin=Origin.of(event),
        # Once per job end: a republication of the same end under another event id tells nobody again.
        item_key=f"rapport:{fact.job_id}:{outcome}:{fact.occurred_at.isoformat()}",
    )


async def export_completed(session: AsyncSession, *, fact: ExportCompletedFact, event: CloudEvent) -> None:
    """The requester's file is ready to download."""
    await _tell_requester(session, fact=fact, outcome="pret", message=messages.export_completed(fact), event=event)


async def export_failed(session: AsyncSession, *, fact: ExportFailedFact, event: CloudEvent) -> None:
    """The requester's export failed: the error, so they can start it again."""
    await _tell_requester(session, fact=fact, outcome="echoue", message=messages.export_failed(fact), event=event)


async def document_uploaded(session: AsyncSession, *, fact: DocumentFact, event: CloudEvent) -> None:
    """The intervention's participants, but not the uploader."""
    ref = await repo.intervention_ref(session, fact.intervention_id)
    technicien_id = fact.technicien_id if fact.technicien_id is not None else (ref.technicien_id if ref else None)
    client_id = fact.client_id if fact.client_id is not None else (ref.client_id if ref else None)
    users = [await _technicien_user(session, technicien_id, required=False)]
    users.extend(await _client_side(session, requester_id=ref.requester_id if ref else None, client_id=client_id))
    message = messages.document_uploaded(fact, titre=ref.titre if ref else None)
    await notify(session, user_ids=users, message=message, origin=Origin.of(event), exclude=[fact.uploaded_by])
