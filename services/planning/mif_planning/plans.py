"""Preventive plans: create, edit, redate and delete a plan, its history, and how it is shown."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.errors import Unprocessable
from mif_common.frequences import JOURS, Frequence, FrequenceInconnue, parse_frequence
from mif_planning import replicas_repository as replicas_repo
from mif_planning import repository as repo
from mif_planning.frequence import interval
from mif_planning.models import ActionHistorique, EquipementRef, Plan, StatutPlan, Technicien
from mif_planning.owners import AssetsEquipements, _known_equipement
from mif_planning.schemas import EquipementEmbed, PlanCreate, PlanOut, PlanUpdate, TechnicienEmbed, as_utc
from mif_planning.service import DateTropAncienne, PlanIntrouvable, ReferenceInconnue, is_technicien, iso
from mif_planning.techniciens import own_profile


def frequence_filter(text: str | None) -> str | None:
    """A `frequence` query parameter, in any accepted spelling, as its canonical value."""
    if text is None:
        return None
    try:
        return parse_frequence(text).value
    except FrequenceInconnue as exc:
        raise Unprocessable(str(exc), errors=[{"field": "frequence", "message": "unknown frequency"}]) from exc


async def _equipement_for_plan(
    session: AsyncSession, *, equipement_id: int, assets: AssetsEquipements
) -> EquipementRef:
    equipement = await _known_equipement(session, equipement_id=equipement_id, assets=assets)
    if equipement is None:
        raise ReferenceInconnue(
            f"No equipment with id {equipement_id}; a plan needs an existing equipment.",
            errors=[{"field": "equipement_id", "message": "unknown equipment"}],
        )
    if equipement.statut == "retire":
        raise ReferenceInconnue(
            f"The equipment '{equipement.nom}' (id {equipement_id}) is retired; it needs no preventive plan.",
            errors=[{"field": "equipement_id", "message": "retired equipment"}],
        )
    return equipement


async def _assignable(session: AsyncSession, technicien_id: int) -> Technicien:
    technicien = await repo.technicien_by_id(session, technicien_id)
    if technicien is None or not technicien.is_active:
        raise ReferenceInconnue(
            f"No active technician with id {technicien_id}.",
            errors=[{"field": "technicien_id", "message": "unknown or deleted technician"}],
        )
    return technicien


# Below "one interval ago", a few minutes of grace: the time between reading a refusal's earliest date
# (or computing "one interval ago" in a client) and sending it.
PAST_GRACE = timedelta(minutes=5)

_PLAN_FIELDS = (
    "equipement_id",
    "frequence",
    "prochaine_date",
    "derniere_date",
    "statut",
    "commentaire",
    "technicien_id",
)


def earliest_prochaine_date(frequence: Frequence, *, at: datetime) -> datetime:
    """The earliest next due date a plan of this frequency may be given at `at`: one interval back, less
    the grace, to the minute. Anything earlier would have occurrences to catch up."""
    return (at - interval(frequence) - PAST_GRACE).replace(second=0, microsecond=0)


def check_prochaine_date(value: datetime, frequence: Frequence, *, field: str, at: datetime) -> None:
    """Refuse (422) a next due date more than one interval of `frequence` in the past (docs/planning.md)."""
    earliest = earliest_prochaine_date(frequence, at=at)
    if value >= earliest:
        return
    jours = JOURS[frequence]
    raise DateTropAncienne(
        f"The next due date {iso(value)} is more than one interval of the frequency '{frequence.value}' "
        f"({jours} day{'s' if jours > 1 else ''}) in the past; the earliest date accepted is {iso(earliest)}. "
        "Give that date or a later one (a plan's next date is usually to come).",
        errors=[{"field": field, "message": f"earlier than {iso(earliest)}, the earliest date accepted"}],
        earliest_date=iso(earliest),
    )


def _jsonable(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _snapshot(plan: Plan, fields: Sequence[str] = _PLAN_FIELDS) -> dict[str, Any]:
    return {field: _jsonable(getattr(plan, field)) for field in fields}


def _historique_row(
    planning_id: int, action: ActionHistorique, detail: dict[str, Any], *, user_id: int | None, at: datetime
) -> dict[str, Any]:
    return {"planning_id": planning_id, "action": action.value, "detail": detail, "user_id": user_id, "horodatage": at}


async def _historique(
    session: AsyncSession,
    planning_id: int,
    action: ActionHistorique,
    detail: dict[str, Any],
    *,
    user_id: int | None,
    at: datetime,
) -> None:
    await repo.add_historique(session, [_historique_row(planning_id, action, detail, user_id=user_id, at=at)])


async def create_plan(session: AsyncSession, *, data: PlanCreate, actor: Principal, assets: AssetsEquipements) -> Plan:
    """A plan on an existing equipment; its first due date defaults to one interval from now, and may
    not lie more than one interval in the past."""
    at = now()
    if data.prochaine_date is not None:
        check_prochaine_date(data.prochaine_date, data.frequence, field="prochaine_date", at=at)
    await _equipement_for_plan(session, equipement_id=data.equipement_id, assets=assets)
    if data.technicien_id is not None:
        await _assignable(session, data.technicien_id)
    plan = Plan(
        equipement_id=data.equipement_id,
        frequence=data.frequence.value,
        prochaine_date=data.prochaine_date or as_utc(at) + interval(data.frequence),
        statut=data.statut.value,
        commentaire=data.commentaire,
        technicien_id=data.technicien_id,
        created_by=actor.user_id,
        date_creation=at,
        date_modification=at,
    )
    session.add(plan)
    await session.flush()
    await _historique(session, plan.id, ActionHistorique.creation, _snapshot(plan), user_id=actor.user_id, at=at)
    return plan


async def get_plan(session: AsyncSession, *, plan_id: int, principal: Principal) -> Plan:
    """One plan; a technician sees only the plans it is the default assignee of (others: 404)."""
    plan = await repo.plan_by_id(session, plan_id)
    if plan is not None and is_technicien(principal):
        own = await own_profile(session, principal)
        if own is None or plan.technicien_id != own.id:
            plan = None
    if plan is None:
        raise PlanIntrouvable(f"No preventive plan with id {plan_id}.")
    return plan


async def _plan_for_update(session: AsyncSession, plan_id: int) -> Plan:
    plan = await repo.plan_by_id(session, plan_id, for_update=True)
    if plan is None:
        raise PlanIntrouvable(f"No preventive plan with id {plan_id}.")
    return plan


async def update_plan(
    session: AsyncSession, *, plan_id: int, data: PlanUpdate, assets: AssetsEquipements, actor_id: int | None = None
) -> Plan:
    """Partial update (a new `prochaine_date` here corrects the date; PATCH .../dates re-dates). When the
    date or the frequency changes, the date may not lie more than one interval in the past."""
    plan = await _plan_for_update(session, plan_id)
    sent: dict[str, Any] = data.model_dump(exclude_unset=True)
    values: dict[str, Any] = {k: v.value if isinstance(v, Frequence | StatutPlan) else v for k, v in sent.items()}
    changes = {k: v for k, v in values.items() if getattr(plan, k) != v}
    at = now()
    if "prochaine_date" in changes or "frequence" in changes:
        check_prochaine_date(
            changes.get("prochaine_date", plan.prochaine_date),
            Frequence(changes.get("frequence", plan.frequence)),
            field="prochaine_date" if "prochaine_date" in changes else "frequence",
            at=at,
        )
    if "equipement_id" in changes:
        await _equipement_for_plan(session, equipement_id=changes["equipement_id"], assets=assets)
    if changes.get("technicien_id") is not None:
        await _assignable(session, changes["technicien_id"])
    if changes:
        avant = _snapshot(plan, list(changes))
        for key, value in changes.items():
            setattr(plan, key, value)
        plan.date_modification = at
        await session.flush()
        detail = {"avant": avant, "apres": _snapshot(plan, list(changes))}
        await _historique(session, plan.id, ActionHistorique.modification, detail, user_id=actor_id, at=at)
    return plan


async def redate_plan(
    session: AsyncSession, *, plan_id: int, nouvelle_date: datetime, actor_id: int | None = None
) -> Plan:
    """Move the next occurrence to `nouvelle_date` (not more than one interval in the past); the old next
    date becomes `derniere_date`."""
    plan = await _plan_for_update(session, plan_id)
    at, nouvelle_date = now(), as_utc(nouvelle_date)
    check_prochaine_date(nouvelle_date, Frequence(plan.frequence), field="nouvelle_date", at=at)
    avant = plan.prochaine_date
    plan.derniere_date = plan.prochaine_date
    plan.prochaine_date = nouvelle_date
    plan.date_modification = at
    await session.flush()
    detail = {"avant": iso(avant), "apres": iso(nouvelle_date)}
    await _historique(session, plan.id, ActionHistorique.redatation, detail, user_id=actor_id, at=at)
    return plan


async def delete_plan(session: AsyncSession, *, plan_id: int, actor_id: int | None = None) -> None:
    """Delete a plan and its occurrences (interventions already generated stay; its history too)."""
    plan = await _plan_for_update(session, plan_id)
    snapshot = _snapshot(plan)
    await session.delete(plan)
    await session.flush()
    await _historique(session, plan_id, ActionHistorique.suppression, snapshot, user_id=actor_id, at=now())


async def plans_out(session: AsyncSession, plans: Sequence[Plan]) -> list[PlanOut]:
    """Plans as the API shows them, with their equipment's name and their technician's."""
    noms = await replicas_repo.equipement_noms(session, {p.equipement_id for p in plans})
    techniciens = await repo.techniciens_by_ids(session, {p.technicien_id for p in plans if p.technicien_id})
    out = []
    for plan in plans:
        technicien = techniciens.get(plan.technicien_id) if plan.technicien_id else None
        out.append(
            PlanOut(
                id=plan.id,
                equipement_id=plan.equipement_id,
                equipement=(
                    EquipementEmbed(id=plan.equipement_id, nom=noms[plan.equipement_id])
                    if plan.equipement_id in noms
                    else None
                ),
                frequence=Frequence(plan.frequence),
                frequence_jours=PlanOut.jours(plan.frequence),
                prochaine_date=plan.prochaine_date,
                derniere_date=plan.derniere_date,
                statut=StatutPlan(plan.statut),
                commentaire=plan.commentaire,
                technicien_id=plan.technicien_id,
                technicien=(
                    TechnicienEmbed(
                        id=technicien.id, full_name=technicien.user.full_name, is_active=technicien.is_active
                    )
                    if technicien
                    else None
                ),
                date_creation=plan.date_creation,
                date_modification=plan.date_modification,
            )
        )
    return out
