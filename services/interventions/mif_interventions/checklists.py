"""An intervention's checklist (docs/interventions.md, "Checklists"): steps copied from planning's
templates (a plan occurrence's, or one a manager adds), filled by the assigned technician (or a manager)
while the intervention is `en_cours`; an out-of-bounds measure is accepted, flagged and written to the
history; a measure that feeds a meter publishes `interventions.checklist.mesure.v1`; closing with
required steps undone is refused (`transitions` asks `refuser_si_incomplete`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_common.errors import Conflict, Forbidden, NotFound, Unprocessable
from mif_common.events import add_event
from mif_interventions import checklist_repository as repo
from mif_interventions.events import ChecklistMesure
from mif_interventions.models import (
    CLOSED_STATUTS,
    ActionHistorique,
    Intervention,
    InterventionEtape,
    Statut,
    TypeEtape,
)
from mif_interventions.schemas import ChecklistFact, EtapeFact, EtapeOut, EtapeRemplie
from mif_interventions.service import Auteur, InterventionFigee, _historiser, _pour_ecrire, get_intervention


class EtapeIntrouvable(NotFound):
    slug = "checklist-step-not-found"


class ChecklistInconnue(Unprocessable):
    slug = "unknown-checklist"


class ChecklistDejaAjoutee(Conflict):
    slug = "checklist-already-added"


class EtapeNonModifiable(Conflict):
    slug = "checklist-step-not-fillable"


class EtapesObligatoiresNonRemplies(Conflict):
    slug = "checklist-incomplete"


class ReponseInvalide(Unprocessable):
    slug = "checklist-answer-invalid"


# The body field each type of step takes.
CHAMP = {
    TypeEtape.verification: "fait",
    TypeEtape.mesure: "valeur",
    TypeEtape.texte: "texte",
    TypeEtape.photo: "document_id",
}


def rempli(etape: InterventionEtape) -> bool:
    if etape.rempli_le is None:
        return False
    return etape.fait is True if etape.type == TypeEtape.verification else True


def etape_out(etape: InterventionEtape) -> EtapeOut:
    return EtapeOut.model_validate(
        {c: getattr(etape, c) for c in EtapeOut.model_fields if c != "rempli"} | {"rempli": rempli(etape)}
    )


def _nombre(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def _bornes(etape: InterventionEtape) -> str:
    unite = f" {etape.unite}" if etape.unite else ""
    bas = _nombre(etape.min) if etape.min is not None else "−∞"
    haut = _nombre(etape.max) if etape.max is not None else "+∞"
    return f"[{bas} ; {haut}]{unite}"


def _lignes(
    intervention_id: int, *, checklist_id: int, nom: str, etapes: Iterable[EtapeFact], depuis: int
) -> list[dict[str, Any]]:
    return [
        {
            "intervention_id": intervention_id,
            "checklist_id": checklist_id,
            "checklist_nom": nom,
            "ordre": depuis + n,
            "type": e.type.value,
            "libelle": e.libelle,
            "obligatoire": e.obligatoire,
            "unite": e.unite if e.type is TypeEtape.mesure else None,
            "min": e.min if e.type is TypeEtape.mesure else None,
            "max": e.max if e.type is TypeEtape.mesure else None,
            "compteur_code": e.compteur_code if e.type is TypeEtape.mesure else None,
        }
        for n, e in enumerate(sorted(etapes, key=lambda e: e.ordre), start=1)
    ]


async def copier_modele(
    session: AsyncSession, *, intervention_id: int, checklist_id: int, nom: str, etapes: Sequence[EtapeFact]
) -> int:
    """Copy a template's steps onto an intervention, after its existing ones; returns how many."""
    depuis = await repo.dernier_ordre(session, intervention_id)
    rows = _lignes(intervention_id, checklist_id=checklist_id, nom=nom, etapes=etapes, depuis=depuis)
    await repo.add_etapes(session, rows)
    return len(rows)


async def checklist_of(session: AsyncSession, *, intervention_id: int, auteur: Auteur) -> list[EtapeOut]:
    """The steps of an intervention the caller may see (any other is 404)."""
    assert auteur.principal is not None
    await get_intervention(session, intervention_id=intervention_id, principal=auteur.principal)
    return [etape_out(e) for e in await repo.etapes(session, intervention_id)]


async def ajouter_modele(
    session: AsyncSession, *, intervention_id: int, checklist_id: int, auteur: Auteur
) -> list[EtapeOut]:
    """A manager adds a planning template to an intervention not yet closed (its steps follow the
    existing ones); the same template twice is 409."""
    intervention = await _pour_ecrire(session, intervention_id=intervention_id, auteur=auteur, if_match=None)
    if intervention.statut in CLOSED_STATUTS:
        raise InterventionFigee(
            f"L'intervention n°{intervention.id} est « {intervention.statut} » : on ne lui ajoute plus de checklist. "
            f"(Intervention {intervention.id} is '{intervention.statut}'.)",
            statut=intervention.statut,
        )
    modele = await repo.checklist_ref(session, checklist_id)
    if modele is None or modele.supprime:
        raise ChecklistInconnue(
            f"Aucun modèle de checklist n°{checklist_id} n'est connu ; vérifiez-le dans le planning "
            f"(GET /api/v1/planning/checklists). (No checklist template {checklist_id}.)",
            errors=[{"field": "checklist_id", "message": "unknown checklist template"}],
        )
    if await repo.checklist_deja_ajoutee(session, intervention_id=intervention.id, checklist_id=checklist_id):
        raise ChecklistDejaAjoutee(
            f"La checklist « {modele.nom} » est déjà sur l'intervention n°{intervention.id}. "
            f"(Checklist {checklist_id} is already on intervention {intervention.id}.)"
        )
    etapes = [EtapeFact.model_validate(e) for e in modele.etapes]
    nombre = await copier_modele(
        session, intervention_id=intervention.id, checklist_id=checklist_id, nom=modele.nom, etapes=etapes
    )
    _historiser(
        session,
        intervention,
        action=ActionHistorique.checklist,
        auteur=auteur,
        at=now(),
        remarque=f"Checklist ajoutée : {modele.nom} ({nombre} étape{'s' if nombre > 1 else ''})",
        apres={"checklist_id": checklist_id, "nom": modele.nom, "etapes": nombre},
    )
    await session.flush()
    return [etape_out(e) for e in await repo.etapes(session, intervention.id)]


def _valeur(etape: InterventionEtape, body: EtapeRemplie) -> Any:
    """The one value the step's type takes from the body (422 naming the field otherwise)."""
    champ = CHAMP[TypeEtape(etape.type)]
    sent = body.model_dump(exclude_unset=True, exclude_none=True)
    if set(sent) != {champ}:
        raise ReponseInvalide(
            f"L'étape {etape.ordre} « {etape.libelle} » est de type {etape.type} : envoyez seulement "
            f"« {champ} ». (A '{etape.type}' step takes '{champ}' alone.)",
            errors=[{"field": champ, "message": f"required for a '{etape.type}' step, alone"}],
        )
    return sent[champ]


async def remplir_etape(
    session: AsyncSession, *, intervention_id: int, etape_id: int, body: EtapeRemplie, auteur: Auteur
) -> EtapeOut:
    """Fill one step: the assigned technician (a technician sees only its interventions: any other is
    404) or a manager, while the intervention is `en_cours` (409 naming the statut otherwise)."""
    principal = auteur.principal
    if principal is None or not (principal.is_manager or principal.role.value == "technicien"):
        raise Forbidden("Seul le technicien affecté ou un responsable remplit la checklist.")
    intervention = await _pour_ecrire(session, intervention_id=intervention_id, auteur=auteur, if_match=None)
    etape = await repo.etape(session, intervention_id=intervention.id, etape_id=etape_id)
    if etape is None:
        raise EtapeIntrouvable(
            f"L'intervention n°{intervention.id} n'a pas d'étape n°{etape_id}. "
            f"(No step {etape_id} on intervention {intervention.id}.)"
        )
    if intervention.statut != Statut.en_cours:
        raise EtapeNonModifiable(
            f"L'intervention n°{intervention.id} est « {intervention.statut} » : la checklist se remplit "
            f"seulement pendant les travaux (en_cours) ; démarrez ou reprenez l'intervention d'abord. "
            f"(Steps are filled while 'en_cours'; it is '{intervention.statut}'.)",
            statut=intervention.statut,
        )
    valeur = _valeur(etape, body)
    at = now()
    avant = {"fait": etape.fait, "valeur": etape.valeur_mesure, "texte": etape.texte, "document_id": etape.document_id}
    remarque = f"Étape {etape.ordre}. {etape.libelle} : "
    etape.hors_limites = False
    if etape.type == TypeEtape.verification:
        etape.fait = bool(valeur)
        remarque += "oui" if valeur else "non"
    elif etape.type == TypeEtape.mesure:
        etape.valeur_mesure = float(valeur)
        etape.hors_limites = (etape.min is not None and valeur < etape.min) or (
            etape.max is not None and valeur > etape.max
        )
        remarque += _nombre(valeur) + (f" {etape.unite}" if etape.unite else "")
        if etape.hors_limites:
            remarque += f" — HORS LIMITES {_bornes(etape)}"
    elif etape.type == TypeEtape.texte:
        etape.texte = str(valeur)
        remarque += str(valeur)
    else:
        await _document_de(session, intervention=intervention, etape=etape, document_id=int(valeur))
        etape.document_id = int(valeur)
        remarque += f"photo (document n°{valeur})"
    etape.rempli_par = auteur.user_id
    etape.rempli_le = at
    apres: dict[str, Any] = {"etape_id": etape.id, "ordre": etape.ordre, CHAMP[TypeEtape(etape.type)]: valeur}
    if etape.type == TypeEtape.mesure:
        apres |= {"hors_limites": etape.hors_limites, "min": etape.min, "max": etape.max, "unite": etape.unite}
    _historiser(
        session,
        intervention,
        action=ActionHistorique.checklist,
        auteur=auteur,
        at=at,
        remarque=remarque[:2000],
        avant={"etape_id": etape.id} | {k: v for k, v in avant.items() if v is not None},
        apres=apres,
    )
    if etape.type == TypeEtape.mesure and etape.compteur_code:
        await _publier_mesure(session, intervention, etape, auteur=auteur, at=at)
    await session.flush()
    return etape_out(etape)


async def _document_de(
    session: AsyncSession, *, intervention: Intervention, etape: InterventionEtape, document_id: int
) -> None:
    if not await repo.document_attache(session, intervention_id=intervention.id, document_id=document_id):
        raise ReponseInvalide(
            f"Le document n°{document_id} n'est pas joint à l'intervention n°{intervention.id} ; téléversez la "
            f"photo sur l'intervention (POST /api/v1/documents) puis indiquez son id. "
            f"(Document {document_id} is not attached to intervention {intervention.id}.)",
            errors=[{"field": "document_id", "message": "not a document of this intervention"}],
        )


async def _publier_mesure(
    session: AsyncSession, intervention: Intervention, etape: InterventionEtape, *, auteur: Auteur, at: datetime
) -> None:
    assert etape.compteur_code is not None
    assert etape.valeur_mesure is not None
    await add_event(
        session,
        ChecklistMesure(
            intervention_id=intervention.id,
            equipement_id=intervention.equipement_id,
            etape_id=etape.id,
            compteur_code=etape.compteur_code,
            valeur=etape.valeur_mesure,
            unite=etape.unite,
            hors_limites=etape.hors_limites,
            horodatage=at,
            user_id=auteur.user_id,
        ),
        subject=intervention.id,
    )


async def refuser_si_incomplete(session: AsyncSession, intervention: Intervention) -> None:
    """Closing is refused (409) while required steps are undone; the sentence names them."""
    manquantes = await repo.obligatoires_non_faites(session, intervention.id)
    if manquantes:
        noms = " ; ".join(f"{e.ordre}. {e.libelle}" for e in manquantes)
        raise EtapesObligatoiresNonRemplies(
            f"Étapes obligatoires non remplies : {noms}. Remplissez-les avant de clôturer l'intervention "
            f"n°{intervention.id}. (Required checklist steps are not done.)",
            etapes=[{"id": e.id, "ordre": e.ordre, "libelle": e.libelle} for e in manquantes],
        )


async def remember_checklist(session: AsyncSession, *, fact: ChecklistFact, deleted: bool = False) -> None:
    """A template's snapshot from planning (a deleted one stays as a tombstone)."""
    await repo.upsert_checklist_ref(
        session,
        checklist_id=fact.checklist_id,
        nom=fact.nom,
        etapes=[e.model_dump(mode="json") for e in fact.etapes],
        supprime=deleted,
        version=fact.version,
    )
