"""The intervention workflow of DOMAIN.md §4 as one table: every allowed move, its target and who may
make it. The service, the `PATCH /statut` route, the refusal sentences and the tests all read it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mif_interventions.events import (
    InterventionArchived,
    InterventionAssigned,
    InterventionCancelled,
    InterventionClosed,
    InterventionEvent,
    InterventionPaused,
    InterventionResumed,
    InterventionStarted,
    InterventionUnassigned,
)
from mif_interventions.models import Statut


class Action(StrEnum):
    affecter = "affecter"  # assign, or reassign
    desaffecter = "desaffecter"
    demarrer = "demarrer"
    suspendre = "suspendre"
    reprendre = "reprendre"
    cloturer = "cloturer"
    annuler = "annuler"
    archiver = "archiver"


class Acteur(StrEnum):
    """Who may make a move: a manager (admin included), the assigned technician, or the client
    organisation whose own request it is."""

    responsable = "responsable"
    technicien = "technicien"
    client = "client"


@dataclass(frozen=True, slots=True)
class Transition:
    depuis: Statut
    action: Action
    vers: Statut
    qui: frozenset[Acteur]

    def describe(self) -> str:
        return f"{self.action.value} (→ {self.vers.value})"


R, T, C = Acteur.responsable, Acteur.technicien, Acteur.client
S, A = Statut, Action

TRANSITIONS: tuple[Transition, ...] = (
    Transition(S.ouverte, A.affecter, S.affectee, frozenset({R})),
    Transition(S.ouverte, A.annuler, S.annulee, frozenset({R, C})),
    Transition(S.affectee, A.demarrer, S.en_cours, frozenset({R, T})),
    Transition(S.affectee, A.desaffecter, S.ouverte, frozenset({R})),
    Transition(S.affectee, A.affecter, S.affectee, frozenset({R})),
    Transition(S.affectee, A.annuler, S.annulee, frozenset({R})),
    Transition(S.en_cours, A.suspendre, S.en_attente, frozenset({R, T})),
    Transition(S.en_cours, A.cloturer, S.cloturee, frozenset({R, T})),
    Transition(S.en_cours, A.annuler, S.annulee, frozenset({R, T})),
    Transition(S.en_attente, A.reprendre, S.en_cours, frozenset({R, T})),
    Transition(S.en_attente, A.cloturer, S.cloturee, frozenset({R, T})),
    Transition(S.en_attente, A.annuler, S.annulee, frozenset({R, T})),
    Transition(S.cloturee, A.archiver, S.archivee, frozenset({R})),
    Transition(S.annulee, A.archiver, S.archivee, frozenset({R})),
)

_BY_KEY = {(t.depuis, t.action): t for t in TRANSITIONS}

# The event each action publishes (docs/events/interventions-contract.md).
EVENT_OF: dict[Action, type[InterventionEvent]] = {
    A.affecter: InterventionAssigned,
    A.desaffecter: InterventionUnassigned,
    A.demarrer: InterventionStarted,
    A.suspendre: InterventionPaused,
    A.reprendre: InterventionResumed,
    A.cloturer: InterventionClosed,
    A.annuler: InterventionCancelled,
    A.archiver: InterventionArchived,
}

# Actions that need a reason (`remarque`).
NEEDS_REASON = frozenset({A.suspendre, A.annuler})


def find(depuis: Statut, action: Action) -> Transition | None:
    return _BY_KEY.get((depuis, action))


def moves_from(depuis: Statut, acteurs: frozenset[Acteur] | None = None) -> list[Transition]:
    """Allowed moves from a statut, for anyone (`acteurs` None) or for those roles."""
    return [t for t in TRANSITIONS if t.depuis == depuis and (acteurs is None or t.qui & acteurs)]


def action_towards(depuis: Statut, vers: Statut) -> Action | None:
    """The action that takes `depuis` to `vers` (for `PATCH /statut?statut=`), if there is one."""
    for t in TRANSITIONS:
        if t.depuis == depuis and t.vers == vers:
            return t.action
    return None


def describe_moves(moves: list[Transition]) -> str:
    return ", ".join(m.describe() for m in moves) if moves else "none"


def describe_who(qui: frozenset[Acteur]) -> str:
    names = {
        R: "a responsable",
        T: "the assigned technician",
        C: "the client organisation that requested it (while 'ouverte')",
    }
    return " or ".join(names[a] for a in (R, T, C) if a in qui)
