"""Meter rules (DOMAIN.md §10): what a batch of readings does to the plans watching its meter.

- The meter's usage: a counter's accumulated increments across resets (its value until its first
  reset). A reading flagged `remise_a_zero` is a new baseline: the usage between the last reading
  before it and the reset is unknown and not counted, so a reset neither triggers nor breaks the count.
  The meter's first reading is a baseline too (a usage plan does not catch up with the counter's whole
  past: its next crossing moves above that reading). A reading older than the latest one evaluated
  (a batch arriving late) changes nothing: between two readings of a counter that only increases, it
  adds no usage.
- `usage` plans: each crossing of a multiple k × intervalle of the usage is one occurrence
  `"<planning_id>:u:<k>"`, due at the reading that crossed it, sent as `planning.occurrence.due.v1`
  (interventions makes one preventive intervention per key): a batch crossing twice makes two.
- `seuil` and `variation` plans: an episode starts when the value (seuil) or the rate per hour fitted
  over the last `duree_minutes` (variation) goes beyond the threshold; a seuil rule triggers once the
  readings have stayed beyond for `duree_minutes`, a variation rule at once. A trigger is one
  `planning.occurrence.due.v1` of `type` corrective with the rule's priority and title, keyed
  `"<planning_id>:s|v:<first reading beyond, ISO>"`; nothing more until a reading back within the
  threshold ends the episode.
- Suspended plans follow the readings without generating anything (no flood when resumed).

Exactly once: the rules' state moves in the consumer's transaction with its outbox rows and inbox row;
a redelivered batch is the inbox's no-op, and its readings are not newer than the state anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_common.events import add_event
from mif_planning import compteurs_repository as compteurs_repo
from mif_planning import occurrences_repository as occurrences_repo
from mif_planning import replicas_repository as replicas_repo
from mif_planning import repository as repo
from mif_planning.compteurs_repository import Ajustement
from mif_planning.config import PlanningSettings
from mif_planning.events import OccurrenceDue, RegleDeclenchee
from mif_planning.models import (
    STATUTS_GENERATEURS,
    CompteurRef,
    Declencheur,
    EquipementRef,
    NatureCompteur,
    Operateur,
    Plan,
)
from mif_planning.regles_schemas import CompteurFact, RelevesFact

TITRE_CORRECTIF = "Alerte {code} - {nom}"
# A rate needs readings spanning at least this share of its window.
COUVERTURE_MIN = 0.5


@dataclass(frozen=True)
class Point:
    """One new reading with the meter's usage at it; `base`: a baseline (first reading, or a reset)."""

    horodatage: datetime
    valeur: float
    usage: float
    base: bool


async def remember_compteur(session: AsyncSession, *, fact: CompteurFact, deleted: bool) -> None:
    """Record what assets says about a meter; a deleted one ends the rules watching it."""
    fresh = await compteurs_repo.upsert_compteur_ref(session, fact=fact, supprime=deleted)
    if fresh and deleted:
        await compteurs_repo.end_rules_of_compteur(session, fact.compteur_id, at=now())


def _advance_usage(compteur: CompteurRef, fact: RelevesFact) -> list[Point]:
    """The batch's readings newer than the meter's state, with the usage at each; moves the state."""
    points = []
    for releve in fact.sorted_releves():
        if compteur.dernier_horodatage is not None and releve.horodatage <= compteur.dernier_horodatage:
            continue
        if compteur.nature != NatureCompteur.compteur:
            usage, base = releve.valeur, False
        elif compteur.usage_cumule is None or compteur.derniere_valeur is None:
            usage, base = releve.valeur, True
        elif releve.remise_a_zero or releve.valeur < compteur.derniere_valeur:
            usage, base = compteur.usage_cumule, True
        else:
            usage, base = compteur.usage_cumule + (releve.valeur - compteur.derniere_valeur), False
        if compteur.nature == NatureCompteur.compteur:
            compteur.usage_cumule = usage
        compteur.derniere_valeur = releve.valeur
        compteur.dernier_horodatage = releve.horodatage
        points.append(Point(releve.horodatage, releve.valeur, usage, base))
    return points


async def evaluate_releves(session: AsyncSession, *, fact: RelevesFact, settings: PlanningSettings) -> int:
    """Apply one `assets.releves.recorded.v1` batch: the meter's usage, the readings kept for forecasts
    and rates, then every rule on the meter; returns how many occurrences were sent."""
    compteur = await compteurs_repo.lock_compteur(session, fact)
    points = _advance_usage(compteur, fact)
    plans = await compteurs_repo.rules_of_compteur(session, fact.compteur_id)
    if not points:
        await session.flush()
        return 0
    if any(p.declencheur in (Declencheur.usage, Declencheur.variation) for p in plans):
        await compteurs_repo.add_releves(
            session,
            [
                {"compteur_id": fact.compteur_id, "horodatage": p.horodatage, "valeur": p.valeur, "usage": p.usage}
                for p in points
            ],
        )
        keep = timedelta(days=settings.prevision_fenetre_jours)
        await compteurs_repo.prune_releves(session, fact.compteur_id, before=points[-1].horodatage - keep)
    await session.flush()
    sent = 0
    equipement: EquipementRef | None = None
    if plans:
        equipement = await replicas_repo.equipement_ref(session, fact.equipement_id)
    for plan in plans:
        new = [p for p in points if plan.dernier_releve is None or p.horodatage > plan.dernier_releve]
        if not new:
            continue
        context = _Context(session, plan, compteur, equipement, settings)
        if plan.declencheur == Declencheur.usage:
            sent += await _usage(context, new)
        elif plan.declencheur == Declencheur.seuil:
            sent += await _episodes(context, [(p.horodatage, p.valeur) for p in new])
        elif plan.declencheur == Declencheur.variation:
            sent += await _episodes(context, await _rates(session, plan, compteur, new))
        plan.dernier_releve = new[-1].horodatage
    await session.flush()
    return sent


@dataclass
class _Context:
    session: AsyncSession
    plan: Plan
    compteur: CompteurRef
    equipement: EquipementRef | None
    settings: PlanningSettings

    @property
    def generating(self) -> bool:
        return self.plan.statut in STATUTS_GENERATEURS


def next_multiple(usage: float, intervalle: float) -> float:
    """The first multiple of `intervalle` strictly above `usage`."""
    return (usage // intervalle + 1) * intervalle


async def _usage(context: _Context, points: list[Point]) -> int:
    plan = context.plan
    assert plan.intervalle is not None
    assert plan.prochain_seuil is not None
    sent = 0
    for point in points:
        if point.base:  # a baseline never triggers: the next crossing moves above it
            plan.prochain_seuil = max(plan.prochain_seuil, next_multiple(point.usage, plan.intervalle))
            continue
        while point.usage >= plan.prochain_seuil:
            k = round(plan.prochain_seuil / plan.intervalle)
            if context.generating:
                sent += await _emit_usage(context, k=k, due=point.horodatage, usage=point.usage)
            plan.prochain_seuil = (k + 1) * plan.intervalle
    return sent


async def _emit_usage(context: _Context, *, k: int, due: datetime, usage: float) -> int:
    plan, at = context.plan, now()
    assert plan.intervalle is not None
    key = f"{plan.id}:u:{k}"
    technicien_id = await _default_assignee(context)
    fresh = await occurrences_repo.record_occurrence(
        context.session,
        values={
            "occurrence_key": key,
            "planning_id": plan.id,
            "equipement_id": plan.equipement_id,
            "technicien_id": technicien_id,
            "due_at": due,
            "emitted_at": at,
            "deadline_at": due + timedelta(minutes=context.settings.overdue_grace_minutes),
        },
        stamp="emitted_at",
    )
    if not fresh:
        return 0
    plan.derniere_date = due
    await _publish(context, key=key, due=due, technicien_id=technicien_id, valeur=usage, seuil=k * plan.intervalle)
    return 1


def _beyond(plan: Plan, value: float) -> bool:
    assert plan.seuil is not None
    return value > plan.seuil if plan.operateur == Operateur.superieur else value < plan.seuil


async def _episodes(context: _Context, values: list[tuple[datetime, float]]) -> int:
    """Walk (time, value) pairs through a condition rule's episode state; one trigger per episode."""
    plan = context.plan
    duree = timedelta(minutes=plan.duree_minutes or 0) if plan.declencheur == Declencheur.seuil else timedelta(0)
    sent = 0
    for horodatage, value in values:
        if not _beyond(plan, value):
            plan.hors_limite_depuis, plan.episode_declenche = None, False
            continue
        if plan.hors_limite_depuis is None:
            plan.hors_limite_depuis = horodatage
        if not plan.episode_declenche and horodatage - plan.hors_limite_depuis >= duree and context.generating:
            plan.episode_declenche = True
            sent += await _emit_condition(context, due=horodatage, valeur=value)
    return sent


async def _emit_condition(context: _Context, *, due: datetime, valeur: float) -> int:
    plan, compteur = context.plan, context.compteur
    assert plan.hors_limite_depuis is not None
    assert plan.seuil is not None
    lettre = "s" if plan.declencheur == Declencheur.seuil else "v"
    key = f"{plan.id}:{lettre}:{plan.hors_limite_depuis.astimezone(UTC).isoformat()}"
    nom = context.equipement.nom if context.equipement else f"équipement n°{plan.equipement_id}"
    plan.derniere_date = due
    await _publish(
        context,
        key=key,
        due=due,
        technicien_id=await _default_assignee(context),
        valeur=valeur,
        seuil=plan.seuil,
        corrective={
            "type": "corrective",
            "priorite": plan.priorite,
            "titre": (plan.titre or TITRE_CORRECTIF.format(code=compteur.code, nom=nom))[:255],
        },
    )
    return 1


async def _rates(
    session: AsyncSession, plan: Plan, compteur: CompteurRef, points: list[Point]
) -> list[tuple[datetime, float]]:
    """(time, rate per hour) at each new reading: the least-squares slope of the readings in the
    `duree_minutes` window ending at it (none while the readings span less than half the window)."""
    window = timedelta(minutes=plan.duree_minutes or 1)
    stored = await compteurs_repo.releves_between(
        session, compteur.compteur_id, start=points[0].horodatage - window, end=points[-1].horodatage
    )
    origin = stored[0][0] if stored else points[0].horodatage
    xs = [(t - origin).total_seconds() / 3600 for t, _ in stored]
    ys = [u for _, u in stored]
    wanted = {p.horodatage for p in points}
    rates: list[tuple[datetime, float]] = []
    start = 0
    sx = sy = sxx = sxy = 0.0
    for end, (t, _) in enumerate(stored):
        sx, sy, sxx, sxy = sx + xs[end], sy + ys[end], sxx + xs[end] ** 2, sxy + xs[end] * ys[end]
        while stored[start][0] < t - window:
            sx, sy = sx - xs[start], sy - ys[start]
            sxx, sxy = sxx - xs[start] ** 2, sxy - xs[start] * ys[start]
            start += 1
        n = end - start + 1
        if t not in wanted or n < 2 or (t - stored[start][0]) < window * COUVERTURE_MIN:
            continue
        denominator = n * sxx - sx * sx
        if denominator > 0:
            rates.append((t, (n * sxy - sx * sy) / denominator))
    return rates


async def _default_assignee(context: _Context) -> int | None:
    """The plan's technician, if it is still active (as for calendar occurrences)."""
    if context.plan.technicien_id is None:
        return None
    technicien = await repo.technicien_by_id(context.session, context.plan.technicien_id)
    return technicien.id if technicien is not None and technicien.is_active else None


async def _publish(
    context: _Context,
    *,
    key: str,
    due: datetime,
    technicien_id: int | None,
    valeur: float,
    seuil: float,
    corrective: dict[str, Any] | None = None,
) -> None:
    plan, compteur = context.plan, context.compteur
    await add_event(
        context.session,
        OccurrenceDue(
            occurrence_key=key,
            planning_id=plan.id,
            equipement_id=plan.equipement_id,
            equipement_nom=context.equipement.nom if context.equipement else None,
            technicien_id=technicien_id,
            due_at=due,
            frequence=plan.declencheur,
            commentaire=plan.commentaire,
            occurred_at=now(),
            **(corrective or {}),
            regle=RegleDeclenchee(
                declencheur=plan.declencheur,
                compteur_id=compteur.compteur_id,
                compteur_code=compteur.code,
                unite=compteur.unite,
                valeur=valeur,
                seuil=seuil,
                operateur=plan.operateur,
                debut_episode=plan.hors_limite_depuis if plan.declencheur != Declencheur.usage else None,
            ),
        ),
        subject=plan.id,
    )


def prochaine_date_estimee(plan: Plan, ajustement: Ajustement | None) -> datetime | None:
    """When a usage plan's counter should reach its next crossing, on the fitted line; None with fewer
    than 2 readings or a usage that does not grow."""
    if ajustement is None or ajustement.nombre < 2 or ajustement.pente <= 0 or plan.prochain_seuil is None:
        return None
    jours = (plan.prochain_seuil - ajustement.origine) / ajustement.pente
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=jours)
    except OverflowError:
        return None
