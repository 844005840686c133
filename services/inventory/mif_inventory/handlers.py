"""Events the inventory service consumes.

- `interventions.intervention.*.v1` (docs/events/interventions-contract.md): who may see and use parts on
  an intervention (its organisation, its technician) and whether parts may still be reserved and
  consumed on it (its statut) keep `intervention_ref` current unless it holds a later fact (reordering
  is harmless). Every verb that can change one of those is taken: created, assigned, unassigned,
  started, paused, resumed, closed, cancelled, archived, updated. `late` changes none of them: not taken
  (the replica's `statut` is the last of the facts above). closed, cancelled and archived also release
  what is still reserved for the intervention.
- `planning.technicien.*.v1` (docs/events/planning-contract.md): technicien_id → user_id, the newest
  `version` wins.
- `assets.equipement.*.v1`: an equipment's type, for the parts compatible with it (created, updated,
  deleted; a statut change or a retirement does not change the type).

A duplicate delivery is skipped by the consumer wrapper's inbox; a `data` that does not match the
contract fails validation and goes to the dead-letter queue at once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events import CloudEvent, Handler
from mif_common.events.contracts import INTERVENTION_VERBS, intervention_event_type
from mif_inventory import replicas
from mif_inventory.schemas import EquipementFact, InterventionFact, TechnicienFact

# The intervention verbs taken: those that can change who uses its parts or whether it takes them.
INTERVENTION_VERBS_TAKEN = tuple(verb for verb in INTERVENTION_VERBS if verb != "late")
TECHNICIEN_VERBS = ("created", "updated", "deleted")
EQUIPEMENT_VERBS = ("created", "updated")


async def on_intervention_fact(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.intervention_changed(session, fact=InterventionFact.model_validate(event.data))


async def on_technicien_fact(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.technicien_changed(session, fact=TechnicienFact.model_validate(event.data))


async def on_equipement_fact(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.equipement_changed(session, fact=EquipementFact.model_validate(event.data))


async def on_equipement_deleted(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.equipement_changed(session, fact=EquipementFact.model_validate(event.data), supprime=True)


HANDLERS: dict[str, Handler] = {
    **{intervention_event_type(v): on_intervention_fact for v in INTERVENTION_VERBS_TAKEN},
    **{f"planning.technicien.{v}.v1": on_technicien_fact for v in TECHNICIEN_VERBS},
    **{f"assets.equipement.{v}.v1": on_equipement_fact for v in EQUIPEMENT_VERBS},
    "assets.equipement.deleted.v1": on_equipement_deleted,
}
