"""What each fact says to its recipients, in French: the in-app title and text of a notification.

The e-mail templates (templates/) lay these out; the words are decided here, once, so the in-app list,
the live stream and the e-mail say the same thing.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache

from mif_notifications.models import CONTENU_MAX, TITRE_MAX, TypeNotification
from mif_notifications.schemas import (
    DocumentFact,
    DueFact,
    ExportCompletedFact,
    ExportFact,
    ExportFailedFact,
    InterventionFact,
    OccurrenceFact,
    OverdueFact,
    SignInFailuresFact,
    StockLowFact,
    SuspendedFact,
    UserFact,
)

# Where the frontend lists the parts to order (inventory's page), named in low-stock messages.
PIECES_A_COMMANDER = "/pieces/a-commander"

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
    # An application path to open when it is not an intervention (an export job's page).
    lien: str | None = None

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


_AU_DELA = {">": "au-dessus", "<": "en dessous"}


def rule_triggered(fact: DueFact) -> Message:
    """A seuil or variation rule opened a corrective intervention."""
    equipement = _equipement(fact.equipement_nom, fact.equipement_id)
    titre = fact.titre or f"Alerte sur {equipement}"
    constat = ""
    regle = fact.regle
    if regle is not None:
        sens = _AU_DELA.get(regle.operateur or "", "au-delà")
        if regle.declencheur == "variation":
            constat = (
                f"Le compteur « {regle.compteur_code} » varie de {regle.valeur:.2f} {regle.unite}/h, "
                f"{sens} de la limite de {regle.seuil:g} {regle.unite}/h. "
            )
        else:
            constat = (
                f"Le compteur « {regle.compteur_code} » indique {regle.valeur:g} {regle.unite}, {sens} du seuil de "
                f"{regle.seuil:g} {regle.unite}"
                + (f" depuis le {format_date(regle.debut_episode)}" if regle.debut_episode else "")
                + ". "
            )
    return Message(
        TypeNotification.information,
        f"Alerte : {titre}",
        f"{constat}Une intervention corrective (priorité {fact.priorite or 'normale'}) a été ouverte sur {equipement} "
        f"le {format_date(fact.due_at)} par la règle n°{fact.planning_id}. Affectez-la à un technicien.",
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


def format_quantite(value: Decimal) -> str:
    """A decimal quantity as French write it: `1 234,5`, `12` (no trailing zeros; a no-break space
    between thousands, so a figure never wraps)."""
    text = format(value.normalize(), ",f")  # normalize() drops the zeros; "f" never writes an exponent
    return text.replace(",", "\u00a0").replace(".", ",")


def stock_low(fact: StockLowFact) -> Message:
    def q(value: Decimal) -> str:
        return f"{format_quantite(value)} {fact.unite}".rstrip()

    jusqua = (
        f"pour revenir au maximum de {q(fact.stock_maximum)}"
        if fact.stock_maximum is not None
        else "pour revenir au minimum"
    )
    return Message(
        TypeNotification.stock_bas,
        f"Stock bas : {fact.reference} {fact.nom}",
        f"Le stock disponible de la pièce {fact.reference} « {fact.nom} » est de {q(fact.disponible)}, pour un "
        f"minimum de {q(fact.stock_minimum)}. Quantité à commander : {q(fact.a_commander)} ({jusqua}). Voir les "
        f"pièces à commander : {PIECES_A_COMMANDER}",
    )


# What reports calls its exports (`type`), as a requester reads it; an unknown one is shown as sent.
_EXPORTS = {
    "equipements": "équipements",
    "pieces": "pièces",
    "plans": "plans préventifs",
    "kpis": "indicateurs",
    "bon_intervention": "bon d'intervention",
    "rapport_mensuel": "rapport mensuel",
}


def _export(fact: ExportFact) -> str:
    """`interventions (XLSX)`."""
    return f"{_EXPORTS.get(fact.type, fact.type)} ({fact.format.upper()})"


def _lignes(count: int) -> str:
    return f"{format_quantite(Decimal(count))} ligne" + ("s" if count > 1 else "")


def export_completed(fact: ExportCompletedFact) -> Message:
    return Message(
        TypeNotification.rapport_pret,
        f"Rapport prêt : {_export(fact)}",
        f"Votre export {_export(fact)} est prêt : « {fact.nom_fichier} », {_lignes(fact.lignes)}. Vous pouvez le "
        f"télécharger jusqu'au {format_date(fact.expire_le)}. Télécharger : {fact.chemin}",
        lien=fact.chemin,
    )


def export_failed(fact: ExportFailedFact) -> Message:
    # Clipped so that a long error never pushes the job's path out of the text (`CONTENU_MAX`).
    erreur = _clip(fact.erreur.strip(), 600)
    return Message(
        TypeNotification.rapport_echoue,
        f"Rapport échoué : {_export(fact)}",
        f"Votre export {_export(fact)} n'a pas pu être produit. Erreur : {erreur}"
        + ("" if erreur.endswith((".", "!", "?")) else ".")
        + f" Vous pouvez relancer l'export. Voir l'export : {fact.chemin}",
        lien=fact.chemin,
    )
