"""Events the planning service consumes.

- `auth.user.*.v1` keep the user replica current (a technician profile needs a user whose role is
  `technicien`; responses embed the user's name and address).
- `assets.equipement.*.v1` keep the equipment replica current (plans need an existing equipment; a
  retired or deleted one ends its plans).
- `interventions.intervention.*.v1` keep the intervention replica current: technicians' availability
  and workload, their schedule, and the follow-up of the occurrences of preventive plans.

Older facts than the replica's are ignored, so reordering is harmless; the consumer wrapper's inbox
makes a duplicate delivery a no-op.
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events import CloudEvent, Handler
from mif_common.events.contracts import INTERVENTION_VERBS, intervention_event_type
from mif_planning import replicas
from mif_planning.schemas import EquipementFact, InterventionFact, UserFact

USER_VERBS = ("created", "updated", "deactivated", "activated")
EQUIPEMENT_VERBS = ("created", "updated", "status_changed", "retired", "deleted")


async def on_user_changed(session: AsyncSession, event: CloudEvent) -> None:
    """Any user event is a full snapshot; its envelope time orders it against what the replica holds."""
    fact = UserFact.model_validate(event.data)
    at = event.time if event.time.tzinfo is not None else event.time.replace(tzinfo=UTC)
    await replicas.remember_user(session, fact=fact, at=at)


async def on_equipement_changed(session: AsyncSession, event: CloudEvent) -> None:
    fact = EquipementFact.model_validate(event.data)
    await replicas.remember_equipement(session, fact=fact, deleted=event.type == "assets.equipement.deleted.v1")


async def on_intervention_changed(session: AsyncSession, event: CloudEvent) -> None:
    fact = InterventionFact.model_validate(event.data)
    await replicas.track_intervention(session, fact=fact)


HANDLERS: dict[str, Handler] = {
    **{f"auth.user.{verb}.v1": on_user_changed for verb in USER_VERBS},
    **{f"assets.equipement.{verb}.v1": on_equipement_changed for verb in EQUIPEMENT_VERBS},
    **{intervention_event_type(verb): on_intervention_changed for verb in INTERVENTION_VERBS},
}
