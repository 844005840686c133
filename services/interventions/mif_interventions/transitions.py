"""Workflow moves (the table is `workflow.py`): an action, or the move towards a statut the frontend's
`PATCH /statut` names; one-click dispatch asks planning."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_interventions import checklists, workflow
from mif_interventions import repository as repo
from mif_interventions.dispatch import PlanningClient, Recommande
from mif_interventions.models import ActionHistorique, Intervention, Statut
from mif_interventions.owners import _technicien_actif
from mif_interventions.service import (
    SANS_MOTIF,
    ActionNonAutorisee,
    Auteur,
    DonneesIncoherentes,
    TransitionInterdite,
    _acteurs,
    _historiser,
    _json,
    _pour_ecrire,
    _publier,
    get_intervention,
    scope_of,
)
from mif_interventions.workflow import Action


async def apply_action(
    session: AsyncSession,
    *,
    intervention_id: int,
    action: Action,
    auteur: Auteur,
    if_match: str | None = None,
    technicien_id: int | None = None,
    remarque: str | None = None,
    rapport: str | None = None,
    duree_reelle: int | None = None,
    cout_reel: int | None = None,
    planning: PlanningClient | None = None,
) -> Intervention:
    """One workflow move (DOMAIN.md §4) on the locked intervention. Assigning without a technician
    assigns the one planning recommends (`planning` asks it)."""
    choix = None
    if action is Action.affecter and technicien_id is None:
        current = await get_intervention(session, intervention_id=intervention_id, principal=_principal(auteur))
        choix = await _recommandation(session, current, auteur=auteur, planning=planning)
        technicien_id = choix.technicien.id
    intervention = await _pour_ecrire(session, intervention_id=intervention_id, auteur=auteur, if_match=if_match)
    return await _transition(
        session,
        intervention,
        action,
        auteur=auteur,
        technicien_id=technicien_id,
        remarque=remarque,
        rapport=rapport,
        duree_reelle=duree_reelle,
        cout_reel=cout_reel,
        choix=choix,
    )


async def change_statut(
    session: AsyncSession,
    *,
    intervention_id: int,
    statut: Statut,
    auteur: Auteur,
    remarque: str | None = None,
    technicien_id: int | None = None,
    if_match: str | None = None,
    planning: PlanningClient | None = None,
) -> Intervention:
    """`PATCH /statut?statut=` (the existing frontend's buttons): the move that leads from the current
    statut to `statut`. Every move may come without a `remarque` here; assigning without a technician
    assigns the one planning recommends."""
    scope = await scope_of(session, _principal(auteur))
    choix = None
    # Only an assignment (to `affectee`) may need planning's recommendation, asked before the row is locked
    # (no lock is held while planning answers); every other move reads the row once, locked.
    if statut is Statut.affectee and technicien_id is None:
        current = await get_intervention(
            session, intervention_id=intervention_id, principal=_principal(auteur), scope=scope
        )
        if _action_towards(current, statut) is Action.affecter:
            choix = await _recommandation(session, current, auteur=auteur, planning=planning)
            technicien_id = choix.technicien.id
    intervention = await _pour_ecrire(
        session, intervention_id=intervention_id, auteur=auteur, if_match=if_match, scope=scope
    )
    action = _action_towards(intervention, statut)  # again, on what is locked now
    if action is Action.affecter and technicien_id is None:  # someone unassigned it meanwhile: ask on retry
        raise TransitionInterdite(f"Intervention {intervention.id} changed meanwhile; reload it and try again.")
    return await _transition(
        session,
        intervention,
        action,
        auteur=auteur,
        technicien_id=technicien_id,
        remarque=remarque,
        rapport=remarque if action is Action.cloturer else None,
        reason_optional=True,
        choix=choix,
    )


def _principal(auteur: Auteur) -> Principal:
    assert auteur.principal is not None, "a route always acts for a signed-in caller"
    return auteur.principal


def _action_towards(intervention: Intervention, statut: Statut) -> Action:
    depuis = Statut(intervention.statut)
    action = workflow.action_towards(depuis, statut)
    if statut is Statut.affectee and depuis in (Statut.ouverte, Statut.affectee):
        action = Action.affecter
    if action is None:
        moves = workflow.moves_from(depuis)
        raise TransitionInterdite(
            f"Intervention {intervention.id} is '{depuis.value}' and cannot go to '{statut.value}'. "
            f"Allowed from '{depuis.value}': {workflow.describe_moves(moves)}.",
            statut=depuis.value,
            allowed=[m.vers.value for m in moves],
        )
    return action


async def _recommandation(
    session: AsyncSession, intervention: Intervention, *, auteur: Auteur, planning: PlanningClient | None
) -> Recommande:
    """The technician planning recommends for this intervention (read, not yet locked: no lock is held
    across the question), asked only once the caller is known to be allowed to assign it (so a refusal
    is the workflow's sentence, not planning's). The replica learns that technician."""
    _allowed_move(intervention, Action.affecter, auteur)
    if planning is None:
        raise DonneesIncoherentes(
            "Assigning needs a technician: add technicien_id.",
            errors=[{"field": "technicien_id", "message": "required to assign"}],
        )
    choix = await planning.recommande(intervention_id=intervention.id, equipement_id=intervention.equipement_id)
    await repo.upsert_technicien_ref(
        session,
        technicien_id=choix.technicien.id,
        user_id=choix.technicien.user_id,
        full_name=choix.full_name,
        is_active=choix.technicien.is_active,
        version=choix.technicien.version,
    )
    return choix


def _allowed_move(intervention: Intervention, action: Action, auteur: Auteur) -> workflow.Transition:
    """The workflow move `action` from the intervention's statut, if the caller may make it."""
    depuis = Statut(intervention.statut)
    move = workflow.find(depuis, action)
    if move is None:
        moves = workflow.moves_from(depuis)
        raise TransitionInterdite(
            f"Intervention {intervention.id} is '{depuis.value}': '{action.value}' is not possible from there. "
            f"Allowed from '{depuis.value}': {workflow.describe_moves(moves)}.",
            statut=depuis.value,
            allowed=[m.action.value for m in moves],
        )
    acteurs = _acteurs(auteur, intervention)
    if not move.qui & acteurs:
        mine = workflow.moves_from(depuis, acteurs)
        raise ActionNonAutorisee(
            f"'{action.value}' from '{depuis.value}' is for {workflow.describe_who(move.qui)}. "
            f"What you may do from '{depuis.value}': {workflow.describe_moves(mine)}.",
            statut=depuis.value,
            allowed=[m.action.value for m in mine],
        )
    return move


async def _transition(
    session: AsyncSession,
    intervention: Intervention,
    action: Action,
    *,
    auteur: Auteur,
    technicien_id: int | None = None,
    remarque: str | None = None,
    rapport: str | None = None,
    duree_reelle: int | None = None,
    cout_reel: int | None = None,
    reason_optional: bool = False,
    choix: Recommande | None = None,
) -> Intervention:
    """The move itself. `reason_optional`: the PATCH route, where a reason is never required (its history
    row says none was given); `choix`: the technician came from planning's recommendation."""
    depuis = Statut(intervention.statut)
    move = _allowed_move(intervention, action, auteur)
    if action is Action.cloturer:  # every path to `cloturee` (the action, PATCH /statut) comes here
        await checklists.refuser_si_incomplete(session, intervention)
    if action in workflow.NEEDS_REASON and not remarque:
        if not reason_optional:
            raise DonneesIncoherentes(
                f"'{action.value}' needs a reason: send it as remarque.",
                errors=[{"field": "remarque", "message": f"required to {action.value}"}],
            )
        remarque = SANS_MOTIF
    if choix is not None:
        remarque = f"{choix.motif()} {remarque}" if remarque else choix.motif()
    at = now()
    avant: dict[str, Any] = {"statut": depuis.value}
    apres: dict[str, Any] = {"statut": move.vers.value}
    historique_action = ActionHistorique.changement_statut
    if action is Action.affecter:
        assert technicien_id is not None
        if technicien_id == intervention.technicien_id:
            raise TransitionInterdite(
                f"Intervention {intervention.id} is already assigned to technician {technicien_id}."
            )
        await _technicien_actif(session, technicien_id)
        avant["technicien_id"], apres["technicien_id"] = intervention.technicien_id, technicien_id
        apres["affectation"] = "automatique" if choix is not None else "manuelle"
        intervention.technicien_id = technicien_id
        intervention.date_affectation = at
        apres["date_affectation"] = _json(at)
        historique_action = ActionHistorique.affectation
    elif action is Action.desaffecter:
        avant["technicien_id"], apres["technicien_id"] = intervention.technicien_id, None
        intervention.technicien_id = None
        intervention.date_affectation = None
        historique_action = ActionHistorique.desaffectation
    elif action is Action.demarrer:
        if intervention.date_debut_travaux is None:
            intervention.date_debut_travaux = at
            apres["date_debut_travaux"] = _json(at)
    elif action is Action.cloturer:
        intervention.date_fin_travaux = at
        intervention.date_cloture = at
        apres["date_fin_travaux"] = apres["date_cloture"] = _json(at)
        if rapport is not None:
            intervention.rapport = rapport
        if cout_reel is not None:
            intervention.cout_reel = cout_reel
        if duree_reelle is not None:
            intervention.duree_reelle = duree_reelle
        elif intervention.duree_reelle is None and intervention.date_debut_travaux is not None:
            intervention.duree_reelle = max(0, round((at - intervention.date_debut_travaux).total_seconds() / 60))
        for f in ("rapport", "duree_reelle", "cout_reel"):
            apres[f] = getattr(intervention, f)
    elif action is Action.archiver:
        intervention.date_archivage = at
        apres["date_archivage"] = _json(at)
    intervention.statut = move.vers.value
    intervention.version += 1
    intervention.date_modification = at
    _historiser(
        session,
        intervention,
        action=historique_action,
        auteur=auteur,
        at=at,
        ancien_statut=depuis.value,
        remarque=remarque,
        avant=avant,
        apres=apres,
    )
    previous = depuis.value if move.vers != depuis else None
    await _publier(session, workflow.EVENT_OF[action], intervention, previous_statut=previous, auteur=auteur, at=at)
    await session.flush()
    return intervention
