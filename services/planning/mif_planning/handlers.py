"""Events the planning service consumes.

- `auth.user.*.v1` keep the user replica current (a technician profile needs a user whose role is
  `technicien`; responses embed the user's name and address).
- `assets.equipement.*.v1` keep the equipment replica current (plans need an existing equipment; a
  retired or deleted one ends its plans).
- `assets.compteur.*.v1` keep the meters replica current (a meter rule needs an existing meter of
  its equipment; a deleted meter ends its rules).
- `assets.releves.recorded.v1` (one batch of new readings of one meter) moves the meter's usage and
  evaluates the usage and condition rules watching it (`regles`).
- `interventions.intervention.*.v1` keep the intervention replica current: technicians' availability
  and workload, their schedule, and the follow-up of the occurrences of preventive plans.

Older facts than the replica's are ignored, so reordering is harmless; the consumer wrapper's inbox
makes a duplicate delivery a no-op.
"""

from __future__ import annotations

from datetime import UTC

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.db import session_settings
from mif_common.events import CloudEvent, Handler
from mif_common.events.contracts import INTERVENTION_VERBS, intervention_event_type
from mif_planning import regles, replicas
from mif_planning.config import PlanningSettings
from mif_planning.regles_schemas import CompteurFact, RelevesFact
from mif_planning.schemas import EquipementFact, InterventionFact, UserFact

USER_VERBS = ("created", "updated", "deactivated", "activated")
EQUIPEMENT_VERBS = ("created", "updated", "status_changed", "retired", "deleted")
COMPTEUR_VERBS = ("created", "updated", "deleted")
RELEVES_RECORDED = "assets.releves.recorded.v1"


async def on_user_changed(session: AsyncSession, event: CloudEvent) -> None:
    """Any user event is a full snapshot; its envelope time orders it against what the replica holds."""
    fact = UserFact.model_validate(event.data)
    at = event.time if event.time.tzinfo is not None else event.time.replace(tzinfo=UTC)
    await replicas.remember_user(session, fact=fact, at=at)


async def on_equipement_changed(session: AsyncSession, event: CloudEvent) -> None:
    fact = EquipementFact.model_validate(event.data)
    await replicas.remember_equipement(session, fact=fact, deleted=event.type == "assets.equipement.deleted.v1")


async def on_compteur_changed(session: AsyncSession, event: CloudEvent) -> None:
    fact = CompteurFact.model_validate(event.data)
    await regles.remember_compteur(session, fact=fact, deleted=event.type == "assets.compteur.deleted.v1")


async def on_releves_recorded(session: AsyncSession, event: CloudEvent) -> None:
    await regles.evaluate_releves(
        session, fact=RelevesFact.model_validate(event.data), settings=session_settings(session, PlanningSettings)
    )


async def on_intervention_changed(session: AsyncSession, event: CloudEvent) -> None:
    fact = InterventionFact.model_validate(event.data)
    await replicas.track_intervention(session, fact=fact)


HANDLERS: dict[str, Handler] = {
    **{f"auth.user.{verb}.v1": on_user_changed for verb in USER_VERBS},
    **{f"assets.equipement.{verb}.v1": on_equipement_changed for verb in EQUIPEMENT_VERBS},
    **{f"assets.compteur.{verb}.v1": on_compteur_changed for verb in COMPTEUR_VERBS},
    RELEVES_RECORDED: on_releves_recorded,
    **{intervention_event_type(verb): on_intervention_changed for verb in INTERVENTION_VERBS},
}
