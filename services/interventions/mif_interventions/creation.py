"""Creating interventions: from a request (replayed under its `Idempotency-Key`) or from a plan
occurrence of planning (one preventive intervention per occurrence, DOMAIN.md §5)."""

from __future__ import annotations

import hashlib
import logging

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal, Role
from mif_common.datetimes import now
from mif_common.errors import Conflict, Forbidden
from mif_interventions import checklists
from mif_interventions import repository as repo
from mif_interventions.config import InterventionsSettings
from mif_interventions.events import InterventionCreated
from mif_interventions.models import ActionHistorique, Intervention, Priorite, Statut, TypeIntervention
from mif_interventions.owners import AssetsEquipements, _equipement_pour, _technicien_actif
from mif_interventions.schemas import InterventionCreate, OccurrenceFact
from mif_interventions.service import (
    ActionNonAutorisee,
    Auteur,
    CleIdempotenceReutilisee,
    DonneesIncoherentes,
    _historiser,
    _publier,
    _snapshot,
    sla_deadline,
    systeme,
)

logger = logging.getLogger(__name__)


def request_fingerprint(data: BaseModel) -> str:
    """SHA-256 of the parsed body (so spacing and key order do not matter)."""
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


async def create_intervention(
    session: AsyncSession,
    *,
    data: InterventionCreate,
    auteur: Auteur,
    settings: InterventionsSettings,
    assets: AssetsEquipements,
    idempotency_key: str | None = None,
) -> tuple[Intervention, bool]:
    """A new intervention (`ouverte`, or `affectee` with a technician). With an `Idempotency-Key`, the
    same key and body answer the intervention created the first time; returns (it, replayed)."""
    principal = auteur.principal
    if principal is None or not principal.has_role(Role.responsable, Role.client):
        raise Forbidden("Only a responsable or a client user creates interventions.")
    if idempotency_key is not None:
        fingerprint = request_fingerprint(data)
        if not await repo.claim_idempotency_key(
            session, user_id=principal.user_id, key=idempotency_key, request_sha256=fingerprint
        ):
            return await _replay(session, principal=principal, key=idempotency_key, fingerprint=fingerprint), True

    if data.technicien_id is not None and not principal.is_manager:
        raise ActionNonAutorisee(
            "Only a responsable assigns a technician; create the request without technicien_id.",
            errors=[{"field": "technicien_id", "message": "only a responsable assigns technicians"}],
        )
    equipement = await _equipement_pour(
        session,
        equipement_id=data.equipement_id,
        principal=principal,
        assets=assets,
    )
    technicien_id = await _technicien_actif(session, data.technicien_id) if data.technicien_id else None
    statut = Statut.affectee if technicien_id is not None else Statut.ouverte
    if data.statut is not None and data.statut != statut:
        raise DonneesIncoherentes(
            f"An intervention is created '{statut.value}'"
            + (" (it has a technician)" if technicien_id else " (or 'affectee' with a technicien_id)")
            + f", never '{data.statut.value}'; use the workflow actions afterwards.",
            errors=[{"field": "statut", "message": f"must be '{statut.value}' or omitted"}],
        )
    at = now()
    priorite = Priorite.urgente if data.urgence else data.priorite
    if data.date_limite is not None and data.date_limite <= at:
        raise DonneesIncoherentes(
            "date_limite must be in the future.", errors=[{"field": "date_limite", "message": "must be in the future"}]
        )
    date_limite = data.date_limite or sla_deadline(settings, priorite.value, at)
    intervention = Intervention(
        titre=data.titre,
        description=data.description,
        type=data.type.value,
        statut=statut.value,
        priorite=priorite.value,
        urgence=data.urgence,
        equipement_id=equipement.id,
        client_id=equipement.client_id,
        technicien_id=technicien_id,
        date_creation=at,
        date_modification=at,
        date_limite=date_limite,
        date_limite_sla=data.date_limite is None and date_limite is not None,
        date_affectation=at if technicien_id is not None else None,
        duree_estimee=data.duree_estimee,
        cout_estime=data.cout_estime,
        created_by=principal.user_id,
        created_by_role=principal.role.value,
        version=1,
    )
    session.add(intervention)
    await session.flush()
    if idempotency_key is not None:
        await repo.set_idempotency_result(
            session, user_id=principal.user_id, key=idempotency_key, intervention_id=intervention.id
        )
    _historiser(
        session, intervention, action=ActionHistorique.creation, auteur=auteur, at=at, apres=_snapshot(intervention)
    )
    await _publier(session, InterventionCreated, intervention, previous_statut=None, auteur=auteur, at=at)
    await session.flush()
    return intervention, False


async def _replay(session: AsyncSession, *, principal: Principal, key: str, fingerprint: str) -> Intervention:
    stored = await repo.idempotency_key(session, user_id=principal.user_id, key=key)
    if stored is None or stored.intervention_id is None:  # purged meanwhile, or its creation rolled back
        raise Conflict("This Idempotency-Key is being used by another request; retry in a moment.")
    if stored.request_sha256 != fingerprint:
        raise CleIdempotenceReutilisee(
            "This Idempotency-Key was already used with a different body; use a new key for a new intervention.",
            errors=[{"field": "Idempotency-Key", "message": "already used with another body"}],
        )
    intervention = await repo.intervention_by_id(session, stored.intervention_id)
    if intervention is None:  # pragma: no cover - interventions are never deleted
        raise Conflict("The intervention this Idempotency-Key created no longer exists.")
    return intervention


async def create_from_occurrence(
    session: AsyncSession, *, fact: OccurrenceFact, settings: InterventionsSettings
) -> Intervention | None:
    """One intervention per plan occurrence (DOMAIN.md §5): preventive, or the type, priority and title
    a meter rule's occurrence gives (a corrective one for a threshold); None for a key already seen."""
    auteur = systeme(f"planning occurrence {fact.occurrence_key}")
    equipement = await repo.equipement_ref(session, fact.equipement_id)
    if equipement is not None and equipement.statut == "retire":
        logger.warning(
            "occurrence %s: equipment %s is retired; nothing created", fact.occurrence_key, fact.equipement_id
        )
        return None
    nom = (equipement.nom if equipement else None) or fact.equipement_nom or f"équipement {fact.equipement_id}"
    remarque = None
    technicien_id = fact.technicien_id
    if technicien_id is not None:
        ref = await repo.technicien_ref(session, technicien_id)
        if ref is None or not ref.is_active:
            remarque = f"Technicien {technicien_id} du plan inconnu ou inactif : intervention non affectée."
            technicien_id = None
    at = now()
    priorite = fact.priorite or Priorite.normale
    values = {
        "titre": (fact.titre or f"Maintenance préventive - {nom}")[:255],
        "description": fact.commentaire,
        "type": (fact.type or TypeIntervention.preventive).value,
        "statut": (Statut.affectee if technicien_id else Statut.ouverte).value,
        "priorite": priorite.value,
        "urgence": priorite is Priorite.urgente,
        "equipement_id": fact.equipement_id,
        # Unknown equipment yet: its organisation is filled in when assets' event arrives.
        "client_id": equipement.client_id if equipement else None,
        "technicien_id": technicien_id,
        "date_creation": at,
        "date_modification": at,
        "date_limite": sla_deadline(settings, priorite.value, fact.due_at),
        "date_limite_sla": True,
        "date_affectation": at if technicien_id else None,
        "planning_id": fact.planning_id,
        "occurrence_key": fact.occurrence_key,
        "version": 1,
    }
    new_id = await repo.insert_for_occurrence(session, values)
    if new_id is None:
        return None
    intervention = await repo.intervention_by_id(session, new_id)
    assert intervention is not None
    if fact.checklist is not None and fact.checklist.etapes:
        await checklists.copier_modele(
            session,
            intervention_id=new_id,
            checklist_id=fact.checklist.id,
            nom=fact.checklist.nom,
            etapes=fact.checklist.etapes,
        )
    _historiser(
        session,
        intervention,
        action=ActionHistorique.creation,
        auteur=auteur,
        at=at,
        remarque=remarque,
        apres={
            **_snapshot(intervention),
            "occurrence_key": fact.occurrence_key,
            **({"checklist_id": fact.checklist.id} if fact.checklist is not None else {}),
        },
    )
    await _publier(session, InterventionCreated, intervention, previous_statut=None, auteur=auteur, at=at)
    await session.flush()
    return intervention
