"""Events the reports service consumes: its whole read model comes from them (docs/reports.md).

- `interventions.intervention.*.v1`, every verb (docs/events/interventions-contract.md): the
  intervention's snapshot, newest `occurred_at` wins; `late` carries the same snapshot and is taken too,
  so the read model never depends on which verbs it hears.
- `inventory.intervention.parts_costed.v1`: parts cost, highest `version` wins.
- `assets.equipement.*.v1`: names and filters (type, localisation, client), newest `version` wins;
  `status_changed` also feeds the breakdown episodes (MTBF, availability).
- `assets.client.*.v1`, `planning.technicien.*.v1`, `inventory.piece.*.v1`, `inventory.stock.moved.v1`:
  names, the technicians counted for utilisation, the parts list.

A duplicate delivery is skipped by the consumer wrapper's inbox; a `data` that does not match the
contract fails validation and goes to the dead-letter queue at once.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.events import CloudEvent, Handler
from mif_common.events.contracts import INTERVENTION_VERBS, intervention_event_type
from mif_reports import replicas
from mif_reports.config import ReportsSettings
from mif_reports.facts import (
    ClientFact,
    EquipementFact,
    InterventionFact,
    PartsCostedFact,
    PieceFact,
    StockMovedFact,
    TechnicienFact,
)


@cache
def _rules() -> tuple[timedelta, ZoneInfo]:
    settings = ReportsSettings()
    return timedelta(days=settings.premiere_resolution_jours), ZoneInfo(settings.fuseau)


async def on_intervention(session: AsyncSession, event: CloudEvent) -> None:
    fenetre, fuseau = _rules()
    fact = InterventionFact.model_validate(event.data)
    await replicas.intervention_changed(session, fact=fact, fenetre=fenetre, fuseau=fuseau)


async def on_parts_costed(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.parts_costed(session, fact=PartsCostedFact.model_validate(event.data), fuseau=_rules()[1])


async def on_equipement(session: AsyncSession, event: CloudEvent) -> None:
    fact = EquipementFact.model_validate(event.data)
    await replicas.equipement_changed(session, fact=fact, fuseau=_rules()[1])


async def on_equipement_deleted(session: AsyncSession, event: CloudEvent) -> None:
    fact = EquipementFact.model_validate(event.data)
    await replicas.equipement_changed(session, fact=fact, fuseau=_rules()[1], supprime=True)


async def on_equipement_statut(session: AsyncSession, event: CloudEvent) -> None:
    fact = EquipementFact.model_validate(event.data)
    await replicas.equipement_statut_changed(session, fact=fact, fuseau=_rules()[1])


async def on_client(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.client_changed(session, fact=ClientFact.model_validate(event.data))


async def on_technicien(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.technicien_changed(session, fact=TechnicienFact.model_validate(event.data))


async def on_piece(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.piece_changed(session, fact=PieceFact.model_validate(event.data))


async def on_piece_deleted(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.piece_changed(session, fact=PieceFact.model_validate(event.data), supprime=True)


async def on_stock_moved(session: AsyncSession, event: CloudEvent) -> None:
    await replicas.stock_moved(session, fact=StockMovedFact.model_validate(event.data))


HANDLERS: dict[str, Handler] = {
    **{intervention_event_type(verb): on_intervention for verb in INTERVENTION_VERBS},
    "inventory.intervention.parts_costed.v1": on_parts_costed,
    **{f"assets.equipement.{verb}.v1": on_equipement for verb in ("created", "updated", "retired")},
    "assets.equipement.status_changed.v1": on_equipement_statut,
    "assets.equipement.deleted.v1": on_equipement_deleted,
    **{f"assets.client.{verb}.v1": on_client for verb in ("created", "updated", "deactivated")},
    **{f"planning.technicien.{verb}.v1": on_technicien for verb in ("created", "updated", "deleted")},
    **{f"inventory.piece.{verb}.v1": on_piece for verb in ("created", "updated")},
    "inventory.piece.deleted.v1": on_piece_deleted,
    "inventory.stock.moved.v1": on_stock_moved,
}
