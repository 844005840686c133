"""What each fact says to its recipients, in French: the in-app title and text of a notification.

The e-mail templates (templates/) lay these out; the words are decided here, once, so the in-app list,
the live stream and the e-mail say the same thing.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache

from mif_notifications.models import CONTENU_MAX, TITRE_MAX, TypeNotification
from mif_notifications.schemas import (
    DocumentFact,
    InterventionFact,
    OccurrenceFact,
    OverdueFact,
    SignInFailuresFact,
    SuspendedFact,
    UserFact,
)

# Dates in messages are shown in Morocco's time, where the business and its users are.
DISPLAY_TIMEZONE = "Africa/Casablanca"

_PRIORITES = {"programmee": "programmée"}
_ROLES = {"admin": "administrateur", "responsable": "responsable", "technicien": "technicien", "client": "client"}


@dataclass(frozen=True, slots=True)
class Message:
    type: TypeNotification
    titre: str
    contenu: str
    intervention_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "titre", _clip(self.titre, TITRE_MAX))
        object.__setattr__(self, "contenu", _clip(self.contenu, CONTENU_MAX))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@lru_cache(maxsize=8)
def _zone(name: str) -> tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


def format_date(moment: datetime, timezone: str = DISPLAY_TIMEZONE) -> str:
    """`12/03/2026 à 14:30` in the display time zone."""
    return moment.astimezone(_zone(timezone)).strftime("%d/%m/%Y à %H:%M")


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _intervention(fact: InterventionFact) -> str:
    return f"l'intervention n°{fact.intervention_id} « {fact.titre} »"


def assigned(fact: InterventionFact) -> Message:
    priorite = _PRIORITES.get(fact.priorite, fact.priorite)
    urgence = " Elle est signalée urgente." if fact.urgence else ""
    return Message(
        TypeNotification.affectation,
        f"Nouvelle intervention affectée : {fact.titre}",
        f"{_first_upper(_intervention(fact))} vous a été affectée (priorité {priorite}).{urgence}",
        fact.intervention_id,
    )


def started(fact: InterventionFact) -> Message:
    return Message(
        TypeNotification.information,
        f"Intervention démarrée : {fact.titre}",
        f"Les travaux de {_intervention(fact)} ont commencé.",
        fact.intervention_id,
    )


def closed(fact: InterventionFact) -> Message:
    return Message(
        TypeNotification.cloture,
        f"Intervention clôturée : {fact.titre}",
        f"{_first_upper(_intervention(fact))} est terminée et clôturée.",
        fact.intervention_id,
    )


def cancelled(fact: InterventionFact) -> Message:
    return Message(
        TypeNotification.information,
        f"Intervention annulée : {fact.titre}",
        f"{_first_upper(_intervention(fact))} a été annulée.",
        fact.intervention_id,
    )


def late(fact: InterventionFact) -> Message:
    return Message(
        TypeNotification.retard,
        f"Intervention en retard : {fact.titre}",
        f"{_first_upper(_intervention(fact))} a dépassé sa date limite sans être clôturée (statut : {fact.statut}).",
        fact.intervention_id,
    )


def _equipement(nom: str | None, equipement_id: int) -> str:
    return nom or f"l'équipement n°{equipement_id}"


def reminder(fact: OccurrenceFact) -> Message:
    equipement = _equipement(fact.equipement_nom, fact.equipement_id)
    return Message(
        TypeNotification.rappel,
        f"Maintenance préventive à venir : {equipement}",
        f"Une maintenance préventive de {equipement} (plan n°{fact.planning_id}) est prévue le "
        f"{format_date(fact.due_at)}.",
    )


def overdue(fact: OverdueFact) -> Message:
    equipement = _equipement(fact.equipement_nom, fact.equipement_id)
    intervention = f" (intervention n°{fact.intervention_id})" if fact.intervention_id else ""
    return Message(
        TypeNotification.retard,
        f"Maintenance préventive en retard : {equipement}",
        f"La maintenance préventive de {equipement} prévue le {format_date(fact.due_at)}{intervention} "
        f"n'a pas été clôturée à temps ; le plan n°{fact.planning_id} est en retard.",
        fact.intervention_id,
    )


def plan_suspended(fact: SuspendedFact) -> Message:
    equipement = _equipement(fact.equipement_nom, fact.equipement_id)
    return Message(
        TypeNotification.information,
        f"Plan préventif suspendu automatiquement : {equipement}",
        f"Le plan de maintenance préventive n°{fact.planning_id} ({equipement}, {fact.frequence}) a été suspendu : "
        f"il a généré {fact.generated_last_hour} intervention(s) en moins d'une heure (limite : "
        f"{fact.max_per_hour} par heure). Aucune intervention n'est plus créée pour lui. Vérifiez sa prochaine "
        f"date ({format_date(fact.due_at)}) et sa fréquence, puis réactivez-le.",
    )


def document_uploaded(fact: DocumentFact, *, titre: str | None) -> Message:
    intervention = f"l'intervention n°{fact.intervention_id}" + (f" « {titre} »" if titre else "")
    categorie = f" ({fact.categorie})" if fact.categorie else ""
    return Message(
        TypeNotification.information,
        f"Nouveau document : {fact.filename}",
        f"Le document « {fact.filename} »{categorie} a été ajouté à {intervention}.",
        fact.intervention_id,
    )


def welcome(fact: UserFact) -> Message:
    role = _ROLES.get(fact.role, fact.role)
    return Message(
        TypeNotification.information,
        "Bienvenue sur MIF Maintenance",
        f"Bonjour {fact.full_name}, votre compte « {fact.username} » (rôle {role}) a été créé. "
        "Vous recevrez ici les notifications qui vous concernent.",
    )


def sign_in_failures(fact: SignInFailuresFact) -> Message:
    minutes = max(1, round(fact.window_seconds / 60))
    adresses = "une adresse" if fact.addresses == 1 else f"{fact.addresses} adresses"
    return Message(
        TypeNotification.information,
        "Tentatives de connexion échouées sur votre compte",
        f"{fact.failures} tentatives de connexion avec un mauvais mot de passe ont été faites sur votre compte "
        f"depuis {adresses} au cours des {minutes} dernières minutes (la dernière le "
        f"{format_date(fact.occurred_at)}). Votre compte n'est pas bloqué : ces tentatives sont ralenties, et "
        "une adresse qui insiste est refusée. Si ce n'était pas vous, changez votre mot de passe et prévenez "
        "un administrateur.",
    )
