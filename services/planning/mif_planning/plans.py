"""Maintenance plans: create, edit, redate and delete a plan, its history, and how it is shown. A plan
is a calendar plan (a frequency and a next date) or a rule on a meter (usage, seuil, variation: their
evaluation is `regles`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.db import session_settings
from mif_common.errors import Unprocessable
from mif_common.frequences import JOURS, Frequence, FrequenceInconnue, parse_frequence
from mif_planning import checklists
from mif_planning import compteurs_repository as compteurs_repo
from mif_planning import replicas_repository as replicas_repo
from mif_planning import repository as repo
from mif_planning.config import PlanningSettings
from mif_planning.frequence import interval
from mif_planning.models import (
    ActionHistorique,
    CompteurRef,
    Declencheur,
    EquipementRef,
    NatureCompteur,
    Operateur,
    Plan,
    Priorite,
    StatutPlan,
    Technicien,
)
from mif_planning.owners import AssetsEquipements, _known_equipement
from mif_planning.regles import next_multiple, prochaine_date_estimee
from mif_planning.regles_schemas import CHAMPS, kind_problems
from mif_planning.schemas import (
    CompteurEmbed,
    EquipementEmbed,
    PlanCreate,
    PlanOut,
    PlanUpdate,
    TechnicienEmbed,
    as_utc,
)
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
    "checklist_id",
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


def _fields_of(plan: Plan) -> Sequence[str]:
    """What a plan's history records of it: a calendar plan's fields, or a meter rule's."""
    if plan.declencheur == Declencheur.calendrier:
        return _PLAN_FIELDS
    common = ("equipement_id", "derniere_date", "statut", "commentaire", "technicien_id")
    extra = ("prochain_seuil",) if plan.declencheur == Declencheur.usage else ()
    return ("declencheur", *common, *CHAMPS[Declencheur(plan.declencheur)], *extra)


def _snapshot(plan: Plan, fields: Sequence[str] | None = None) -> dict[str, Any]:
    return {field: _jsonable(getattr(plan, field)) for field in fields or _fields_of(plan)}


class CompteurInconnu(ReferenceInconnue):
    pass


async def _compteur_for_rule(
    session: AsyncSession, *, compteur_id: int, equipement_id: int, declencheur: Declencheur
) -> CompteurRef:
    """The meter a rule watches: known from assets' events, of the plan's equipment, not deleted; a
    usage plan needs a counter (a value that only increases)."""
    compteur = await compteurs_repo.compteur_ref(session, compteur_id)
    if compteur is None or compteur.supprime:
        raise CompteurInconnu(
            f"No meter with id {compteur_id} is known to planning. Create it on the equipment first (assets); "
            "if it was just created, retry in a moment.",
            errors=[{"field": "compteur_id", "message": "unknown meter"}],
        )
    if compteur.equipement_id != equipement_id:
        raise CompteurInconnu(
            f"The meter {compteur_id} ('{compteur.code}') belongs to the equipment {compteur.equipement_id}, not to "
            f"{equipement_id}; choose one of that equipment's meters.",
            errors=[{"field": "compteur_id", "message": "meter of another equipment"}],
        )
    if declencheur is Declencheur.usage and compteur.nature != NatureCompteur.compteur:
        raise CompteurInconnu(
            f"The meter '{compteur.code}' is a gauge; a usage plan counts a counter's units (heures_marche, "
            "cycles, km). Use a seuil or variation plan for a gauge.",
            errors=[{"field": "compteur_id", "message": "not a counter"}],
        )
    return compteur


def _kind_fields(declencheur: Declencheur, sent: dict[str, Any]) -> None:
    problems = kind_problems(declencheur, sent, creating=False)
    if problems:
        raise Unprocessable(
            f"This plan is a '{declencheur.value}' plan; it does not take {', '.join(f for f, _ in problems)}. "
            "A plan's kind does not change: send only the fields of its kind, or create another plan.",
            errors=[{"field": field, "message": message} for field, message in problems],
        )


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
    """A plan on an existing equipment. A calendar plan's first due date defaults to one interval from
    now, and may not lie more than one interval in the past; a usage plan's first crossing is the next
    multiple of its interval above the counter's usage."""
    at = now()
    frequence = data.frequence
    if data.declencheur is Declencheur.calendrier:
        assert frequence is not None  # PlanCreate checks it
        if data.prochaine_date is not None:
            check_prochaine_date(data.prochaine_date, frequence, field="prochaine_date", at=at)
    await _equipement_for_plan(session, equipement_id=data.equipement_id, assets=assets)
    compteur = None
    if data.compteur_id is not None:
        compteur = await _compteur_for_rule(
            session, compteur_id=data.compteur_id, equipement_id=data.equipement_id, declencheur=data.declencheur
        )
    if data.technicien_id is not None:
        await _assignable(session, data.technicien_id)
    if data.checklist_id is not None:
        await checklists.checklist_for_plan(session, data.checklist_id)
    plan = Plan(
        equipement_id=data.equipement_id,
        declencheur=data.declencheur.value,
        statut=data.statut.value,
        commentaire=data.commentaire,
        technicien_id=data.technicien_id,
        checklist_id=data.checklist_id,
        created_by=actor.user_id,
        date_creation=at,
        date_modification=at,
    )
    if frequence is not None:
        plan.frequence = frequence.value
        plan.prochaine_date = data.prochaine_date or as_utc(at) + interval(frequence)
    if compteur is not None:
        plan.compteur_id = compteur.compteur_id
        # Only readings after the plan's creation are evaluated against it.
        plan.dernier_releve = compteur.dernier_horodatage
    if data.intervalle is not None:
        plan.intervalle = data.intervalle
        plan.prochain_seuil = next_multiple(compteur.usage_cumule or 0.0 if compteur else 0.0, data.intervalle)
    if data.declencheur in (Declencheur.seuil, Declencheur.variation):
        plan.operateur = (data.operateur or Operateur.superieur).value
        plan.seuil = data.seuil
        plan.duree_minutes = data.duree_minutes
        plan.priorite = (data.priorite or Priorite.normale).value
        plan.titre = data.titre
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
    _kind_fields(Declencheur(plan.declencheur), sent)
    values: dict[str, Any] = {k: v.value if isinstance(v, StrEnum) else v for k, v in sent.items()}
    changes = {k: v for k, v in values.items() if getattr(plan, k) != v}
    at = now()
    if "prochaine_date" in changes or "frequence" in changes:
        frequence, prochaine_date = plan.calendrier()  # only a calendar plan takes these fields
        check_prochaine_date(
            changes.get("prochaine_date", prochaine_date),
            Frequence(changes.get("frequence", frequence)),
            field="prochaine_date" if "prochaine_date" in changes else "frequence",
            at=at,
        )
    if "equipement_id" in changes:
        await _equipement_for_plan(session, equipement_id=changes["equipement_id"], assets=assets)
        if plan.compteur_id is not None:
            raise CompteurInconnu(
                "A rule on a meter stays on that meter's equipment; create a plan on the other equipment instead.",
                errors=[{"field": "equipement_id", "message": "a meter rule's equipment does not change"}],
            )
    if "intervalle" in changes:  # the next crossing: the next multiple of the new interval
        compteur = await compteurs_repo.compteur_ref(session, plan.compteur_id) if plan.compteur_id else None
        usage = compteur.usage_cumule if compteur is not None else None
        changes["prochain_seuil"] = next_multiple(usage or 0.0, changes["intervalle"])
    if changes.get("technicien_id") is not None:
        await _assignable(session, changes["technicien_id"])
    if changes.get("checklist_id") is not None:
        await checklists.checklist_for_plan(session, changes["checklist_id"])
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
    if plan.frequence is None or plan.prochaine_date is None:
        raise Unprocessable(
            f"The plan {plan.id} is a '{plan.declencheur}' plan: its occurrences come from its meter's readings, "
            "it has no date to move. Change its interval or threshold instead (PUT).",
            errors=[{"field": "nouvelle_date", "message": "not a calendar plan"}],
        )
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
    """Plans as the API shows them, with their equipment's name, their technician's, their meter and, for
    usage plans, the forecast of their next crossing (one fit query for all of them)."""
    noms = await replicas_repo.equipement_noms(session, {p.equipement_id for p in plans})
    techniciens = await repo.techniciens_by_ids(session, {p.technicien_id for p in plans if p.technicien_id})
    compteurs = await compteurs_repo.compteurs_by_ids(session, {p.compteur_id for p in plans if p.compteur_id})
    usage_ids = {p.compteur_id for p in plans if p.compteur_id and p.declencheur == Declencheur.usage}
    fits = await compteurs_repo.ajustements(
        session, usage_ids, jours=session_settings(session, PlanningSettings).prevision_fenetre_jours
    )
    out = []
    for plan in plans:
        technicien = techniciens.get(plan.technicien_id) if plan.technicien_id else None
        compteur = compteurs.get(plan.compteur_id) if plan.compteur_id else None
        usage = plan.declencheur == Declencheur.usage
        condition = plan.declencheur in (Declencheur.seuil, Declencheur.variation)
        out.append(
            PlanOut(
                id=plan.id,
                equipement_id=plan.equipement_id,
                equipement=(
                    EquipementEmbed(id=plan.equipement_id, nom=noms[plan.equipement_id])
                    if plan.equipement_id in noms
                    else None
                ),
                declencheur=Declencheur(plan.declencheur),
                frequence=Frequence(plan.frequence) if plan.frequence else None,
                frequence_jours=PlanOut.jours(plan.frequence),
                prochaine_date=plan.prochaine_date,
                prochaine_date_estimee=(
                    prochaine_date_estimee(plan, fits.get(plan.compteur_id)) if usage and plan.compteur_id else None
                ),
                derniere_date=plan.derniere_date,
                compteur_id=plan.compteur_id,
                compteur=(
                    CompteurEmbed(
                        id=compteur.compteur_id,
                        code=compteur.code,
                        nom=compteur.nom,
                        nature=compteur.nature,
                        unite=compteur.unite,
                    )
                    if compteur
                    else None
                ),
                intervalle=plan.intervalle,
                prochain_seuil=plan.prochain_seuil,
                usage_actuel=compteur.usage_cumule if usage and compteur else None,
                operateur=Operateur(plan.operateur) if plan.operateur else None,
                seuil=plan.seuil,
                duree_minutes=plan.duree_minutes,
                priorite=Priorite(plan.priorite) if plan.priorite else None,
                titre=plan.titre,
                episode_en_cours=plan.episode_declenche if condition else None,
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
                checklist_id=plan.checklist_id,
                date_creation=plan.date_creation,
                date_modification=plan.date_modification,
            )
        )
    return out
