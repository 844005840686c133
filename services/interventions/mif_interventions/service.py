"""Business rules of the interventions service; the only place that writes outbox events and history.

Row-level rules live here: managers see every intervention, a technician those assigned to them, a
client user its organisation's; anything else is "not found", so existence does not leak. Every change
writes its `historique` row and its event in the caller's transaction; writes lock the intervention row
first, then check `If-Match` and the workflow on what they locked, so concurrent changes serialise.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mif_common.auth import Principal, Role
from mif_common.datetimes import now
from mif_common.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    Unprocessable,
)
from mif_common.events import add_event
from mif_common.owners import ReadThrough
from mif_interventions import repository as repo
from mif_interventions import workflow
from mif_interventions.config import InterventionsSettings
from mif_interventions.dispatch import PlanningClient, Recommande
from mif_interventions.events import (
    InterventionCreated,
    InterventionEvent,
    InterventionLate,
    InterventionUpdated,
)
from mif_interventions.models import (
    CLOSED_STATUTS,
    ActionHistorique,
    Commentaire,
    EquipementRef,
    Historique,
    Intervention,
    Priorite,
    Statut,
    TypeIntervention,
)
from mif_interventions.repository import Visibilite
from mif_interventions.schemas import (
    DocumentFact,
    EquipementFact,
    InterventionCreate,
    InterventionUpdate,
    OccurrenceFact,
    TechnicienFact,
    UserFact,
)
from mif_interventions.workflow import Acteur, Action

logger = logging.getLogger(__name__)


# --- errors ---------------------------------------------------------------------------------------


class InterventionIntrouvable(NotFound):
    slug = "intervention-not-found"


class EquipementInconnu(Unprocessable):
    slug = "unknown-equipement"


class TechnicienInconnu(Unprocessable):
    slug = "unknown-technicien"


class TransitionInterdite(Conflict):
    slug = "transition-not-allowed"


class ActionNonAutorisee(Forbidden):
    slug = "action-not-allowed"


class InterventionFigee(Conflict):
    slug = "intervention-closed"


class VersionPerimee(PreconditionFailed):
    slug = "stale-version"


class CleIdempotenceReutilisee(Unprocessable):
    slug = "idempotency-key-reused"


class DonneesIncoherentes(Unprocessable):
    slug = "inconsistent-data"


class AssetsIndisponible(ServiceUnavailable):
    slug = "assets-unavailable"


# The history's `remarque` of a move whose reason the frontend's PATCH did not give (DOMAIN.md §4).
SANS_MOTIF = "Aucun motif indiqué."


# --- who acts ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Auteur:
    """Who makes a change and from where (kept in the history). `principal` None: the service itself
    (the lateness job, a consumed event)."""

    principal: Principal | None
    ip: str | None = None
    user_agent: str | None = None
    # Without a principal: the user another service says acted (e.g. who uploaded a document).
    on_behalf_of: int | None = None

    @property
    def user_id(self) -> int | None:
        return self.principal.user_id if self.principal is not None else self.on_behalf_of


def systeme(what: str) -> Auteur:
    return Auteur(principal=None, user_agent=f"mif-interventions ({what})"[:500])


def etag(intervention: Intervention | Mapping[str, Any] | sa.RowMapping) -> str:
    version = intervention["version"] if isinstance(intervention, Mapping) else intervention.version
    return f'"{version}"'


async def visibilite(session: AsyncSession | AsyncConnection, principal: Principal) -> Visibilite:
    """Which interventions `principal` may see (DOMAIN.md §1)."""
    if principal.is_manager:
        return Visibilite()
    organisation = principal.organisation()
    if organisation is not None:
        return Visibilite(client_id=organisation)
    technicien_id = await repo.technicien_of_user(session, principal.user_id)
    return Visibilite(technicien_id=technicien_id) if technicien_id is not None else Visibilite(rien=True)


def _acteurs(auteur: Auteur, intervention: Intervention) -> frozenset[Acteur]:
    """The workflow roles the caller holds on this (visible) intervention."""
    principal = auteur.principal
    if principal is None or principal.is_manager:
        return frozenset({Acteur.responsable})
    if principal.role is Role.technicien:
        return frozenset({Acteur.technicien})  # visibility already made sure it is theirs
    if principal.role is Role.client and intervention.created_by_role == Role.client.value:
        return frozenset({Acteur.client})  # its organisation's own request
    return frozenset()


# --- helpers -------------------------------------------------------------------------------------

# Fields shown in the history's `avant`/`apres` of an edit and of the creation.
SNAPSHOT_FIELDS = (
    "titre",
    "description",
    "type",
    "statut",
    "priorite",
    "urgence",
    "equipement_id",
    "client_id",
    "technicien_id",
    "date_limite",
    "duree_estimee",
    "duree_reelle",
    "cout_estime",
    "cout_reel",
    "rapport",
    "planning_id",
)
# What an assigned technician may edit; managers edit every field of InterventionUpdate.
TECHNICIEN_EDITABLE = frozenset({"description", "rapport", "duree_estimee", "duree_reelle", "cout_reel"})


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, StrEnum):
        return value.value
    return value


def _snapshot(intervention: Intervention, fields: Any = SNAPSHOT_FIELDS) -> dict[str, Any]:
    return {f: _json(getattr(intervention, f)) for f in fields}


def sla_deadline(settings: InterventionsSettings, priorite: str, depuis: datetime) -> datetime | None:
    """`date_limite` from the priority's SLA (DOMAIN.md §4); None for `programmee`."""
    hours = settings.sla_hours.get(priorite)
    return depuis + timedelta(hours=hours) if hours is not None else None


def _historiser(
    session: AsyncSession,
    intervention: Intervention,
    *,
    action: ActionHistorique,
    auteur: Auteur,
    at: datetime,
    ancien_statut: str | None = None,
    remarque: str | None = None,
    avant: dict[str, Any] | None = None,
    apres: dict[str, Any] | None = None,
) -> None:
    session.add(
        Historique(
            intervention_id=intervention.id,
            action=action.value,
            statut=intervention.statut,
            ancien_statut=ancien_statut,
            remarque=remarque,
            avant=avant,
            apres=apres,
            user_id=auteur.user_id,
            ip=auteur.ip,
            user_agent=auteur.user_agent,
            horodatage=at,
        )
    )


async def _publier(
    session: AsyncSession,
    event_cls: type[InterventionEvent],
    intervention: Intervention,
    *,
    previous_statut: str | None,
    auteur: Auteur,
    at: datetime,
) -> None:
    await add_event(
        session,
        event_cls(
            intervention_id=intervention.id,
            equipement_id=intervention.equipement_id,
            client_id=intervention.client_id,
            technicien_id=intervention.technicien_id,
            statut=intervention.statut,
            previous_statut=previous_statut,
            type=intervention.type,
            priorite=intervention.priorite,
            urgence=intervention.urgence,
            titre=intervention.titre,
            actor_id=auteur.user_id,
            occurred_at=at,
            planning_id=intervention.planning_id,
            occurrence_key=intervention.occurrence_key,
        ),
        subject=intervention.id,
    )


# --- reading ---------------------------------------------------------------------------------------


def _introuvable(intervention_id: int) -> InterventionIntrouvable:
    return InterventionIntrouvable(f"No intervention with id {intervention_id}.")


async def get_intervention(session: AsyncSession, *, intervention_id: int, principal: Principal) -> Intervention:
    """One intervention the caller may see; any other is "not found"."""
    scope = await visibilite(session, principal)
    intervention = await repo.intervention_by_id(session, intervention_id)
    if intervention is None or not scope.allows(intervention):
        raise _introuvable(intervention_id)
    return intervention


def check_if_match(intervention: Intervention, if_match: str | None) -> None:
    """`If-Match` with the ETag read earlier: a stale one is 412 (`*` or no header: no check)."""
    if if_match is None or not if_match.strip():
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags:
        return
    versions = {t.removeprefix("W/").strip().strip('"') for t in tags}
    if str(intervention.version) not in versions:
        raise VersionPerimee(
            f"Intervention {intervention.id} changed since you read it (ETag now {etag(intervention)}, yours "
            f"{if_match.strip()}); reload it and try again.",
            headers={"ETag": etag(intervention)},
        )


async def _pour_ecrire(
    session: AsyncSession,
    *,
    intervention_id: int,
    auteur: Auteur,
    if_match: str | None,
    scope: Visibilite | None = None,
) -> Intervention:
    """The intervention locked for this transaction, visible to the caller (`scope`, when already known)
    and at the version expected."""
    if scope is None:
        scope = await visibilite(session, auteur.principal) if auteur.principal is not None else Visibilite()
    intervention = await repo.intervention_by_id(session, intervention_id, for_update=True)
    if intervention is None or not scope.allows(intervention):
        raise _introuvable(intervention_id)
    check_if_match(intervention, if_match)
    return intervention


# --- replicas on the write path --------------------------------------------------------------------


class _AssetsEquipement(BaseModel):
    """The fields interventions needs from assets' `GET /api/v1/equipements/{id}` answer."""

    model_config = ConfigDict(extra="ignore")

    id: int
    nom: str
    client_id: int | None
    statut: str
    date_modification: AwareDatetime


class AssetsEquipements(ReadThrough[int, EquipementRef, _AssetsEquipement]):
    """The equipment replica, asking assets on a miss as the caller (assets applies the caller's
    row-level rules): None when assets does not show that equipment to the caller."""

    def base_url(self, settings: InterventionsSettings) -> str:
        return settings.assets_url

    def timeout_seconds(self, settings: InterventionsSettings) -> float:
        return settings.assets_timeout_seconds

    async def replica(self, session: AsyncSession, key: int) -> EquipementRef | None:
        return await repo.equipement_ref(session, key)

    async def ask(self, key: int) -> _AssetsEquipement | None:
        unavailable = AssetsIndisponible(
            "Cannot check the equipment now: the assets service did not answer. Try again in a moment.",
            headers={"Retry-After": "5"},
        )
        return await self.get(f"/api/v1/equipements/{key}", _AssetsEquipement, unavailable=unavailable)

    async def remember(self, session: AsyncSession, answer: _AssetsEquipement) -> None:
        # Version 0: the next event about this equipment (version >= 1) supersedes what we learnt here.
        await repo.upsert_equipement_ref(
            session,
            id=answer.id,
            nom=answer.nom,
            client_id=answer.client_id,
            statut=answer.statut,
            version=0,
            updated_at=answer.date_modification,
        )


async def _equipement_pour(
    session: AsyncSession,
    *,
    equipement_id: int,
    principal: Principal,
    assets: AssetsEquipements,
) -> EquipementRef:
    """The equipment an intervention is about: it must exist and, for a client user, be its own (the
    same sentence either way, so nothing leaks)."""
    ref = await assets.known(session, equipement_id)
    only = principal.organisation()
    if ref is None or (only is not None and ref.client_id != only):
        raise EquipementInconnu(
            f"Equipment {equipement_id} does not exist.",
            errors=[{"field": "equipement_id", "message": "unknown equipment"}],
        )
    if ref.statut == "retire":
        raise EquipementInconnu(
            f"Equipment {equipement_id} ('{ref.nom}') is retired: no intervention can be opened on it.",
            errors=[{"field": "equipement_id", "message": "retired equipment"}],
        )
    return ref


async def _technicien_actif(session: AsyncSession, technicien_id: int) -> int:
    ref = await repo.technicien_ref(session, technicien_id)
    if ref is None or not ref.is_active:
        raise TechnicienInconnu(
            f"Technician {technicien_id} is not an active technician.",
            errors=[{"field": "technicien_id", "message": "unknown or inactive technician"}],
        )
    return technicien_id


# --- creation --------------------------------------------------------------------------------------


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


# --- editing ---------------------------------------------------------------------------------------


async def update_intervention(
    session: AsyncSession,
    *,
    intervention_id: int,
    data: InterventionUpdate,
    auteur: Auteur,
    if_match: str | None,
    settings: InterventionsSettings,
    assets: AssetsEquipements,
) -> Intervention:
    """Edit fields while the intervention is not closed; one history row with before/after values."""
    assert auteur.principal is not None
    intervention = await _pour_ecrire(session, intervention_id=intervention_id, auteur=auteur, if_match=if_match)
    if intervention.statut in CLOSED_STATUTS:
        raise InterventionFigee(
            f"Intervention {intervention.id} is '{intervention.statut}': its fields can no longer be edited."
        )
    sent = {k: _json(v) for k, v in data.model_dump(exclude_unset=True).items()}
    if not auteur.principal.is_manager:
        refused = sorted(set(sent) - TECHNICIEN_EDITABLE)
        if refused:
            raise ActionNonAutorisee(
                f"A technician may edit only {', '.join(sorted(TECHNICIEN_EDITABLE))}; "
                f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} for a responsable.",
                errors=[{"field": f, "message": "only a responsable edits it"} for f in refused],
            )
    if sent.get("urgence") is True:
        sent["priorite"] = Priorite.urgente.value
    elif "priorite" in sent and sent["priorite"] != Priorite.urgente.value:
        sent["urgence"] = False
    at = now()
    changes = {k: v for k, v in sent.items() if _json(getattr(intervention, k)) != v}
    if "equipement_id" in changes:
        equipement = await _equipement_pour(
            session,
            equipement_id=changes["equipement_id"],
            principal=auteur.principal,
            assets=assets,
        )
        if equipement.client_id != intervention.client_id:
            changes["client_id"] = equipement.client_id
    if "date_limite" in changes:
        if data.date_limite is not None and data.date_limite <= intervention.date_creation:
            raise DonneesIncoherentes(
                "date_limite must be after the intervention's date_creation.",
                errors=[{"field": "date_limite", "message": "must be after date_creation"}],
            )
        changes["date_limite"] = data.date_limite
    elif "priorite" in changes and intervention.date_limite_sla:
        # The deadline was the old priority's default: it follows the new priority.
        changes["date_limite"] = sla_deadline(settings, changes["priorite"], intervention.date_creation)
    if not changes:
        return intervention
    avant = {k: _json(getattr(intervention, k)) for k in changes}
    for key, value in changes.items():
        setattr(intervention, key, value)
    if "date_limite" in sent:
        intervention.date_limite_sla = False
    if "date_limite" in changes and (intervention.date_limite is None or intervention.date_limite > at):
        intervention.late_notified_at = None  # a new deadline may be missed again
    intervention.version += 1
    intervention.date_modification = at
    apres = {k: _json(getattr(intervention, k)) for k in changes}
    _historiser(
        session, intervention, action=ActionHistorique.modification, auteur=auteur, at=at, avant=avant, apres=apres
    )
    await _publier(session, InterventionUpdated, intervention, previous_statut=None, auteur=auteur, at=at)
    await session.flush()
    return intervention


# --- workflow ----------------------------------------------------------------------------------------


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
    scope = await visibilite(session, _principal(auteur))
    choix = None
    # Only an assignment (to `affectee`) may need planning's recommendation, asked before the row is locked
    # (no lock is held while planning answers); every other move reads the row once, locked.
    if statut is Statut.affectee and technicien_id is None:
        current = await repo.intervention_by_id(session, intervention_id)
        if current is None or not scope.allows(current):
            raise _introuvable(intervention_id)
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


# --- comments ------------------------------------------------------------------------------------------


async def add_commentaire(session: AsyncSession, *, intervention_id: int, contenu: str, auteur: Auteur) -> Commentaire:
    """A comment by anyone who may see the intervention; it is also a history row."""
    assert auteur.principal is not None
    intervention = await get_intervention(session, intervention_id=intervention_id, principal=auteur.principal)
    at = now()
    commentaire = Commentaire(
        intervention_id=intervention.id, user_id=auteur.principal.user_id, contenu=contenu, date_creation=at
    )
    session.add(commentaire)
    await session.flush()
    _historiser(
        session,
        intervention,
        action=ActionHistorique.commentaire,
        auteur=auteur,
        at=at,
        remarque=contenu,
        apres={"commentaire_id": commentaire.id},
    )
    await session.flush()
    return commentaire


# --- lateness ------------------------------------------------------------------------------------------


async def mark_late(session: AsyncSession, *, at: datetime | None = None, limit: int = 200) -> int:
    """One pass of the lateness job: announce (once) each open intervention past its deadline. Safe
    with several replicas: rows are claimed with SKIP LOCKED and marked in the same transaction as
    their event."""
    at = at or now()
    auteur = systeme("lateness job")
    late = await repo.claim_late(session, now=at, limit=limit)
    for intervention in late:
        intervention.late_notified_at = at
        _historiser(
            session,
            intervention,
            action=ActionHistorique.retard,
            auteur=auteur,
            at=at,
            remarque="Date limite dépassée",
            apres={"date_limite": _json(intervention.date_limite)},
        )
        await _publier(session, InterventionLate, intervention, previous_statut=None, auteur=auteur, at=at)
    await session.flush()
    return len(late)


# --- reactions to other services' events ----------------------------------------------------------------


async def remember_equipement(session: AsyncSession, *, fact: EquipementFact) -> None:
    """An equipment's snapshot from assets; an older version than the replica's is ignored."""
    fresh = await repo.upsert_equipement_ref(
        session,
        id=fact.equipement_id,
        nom=fact.nom,
        client_id=fact.client_id,
        statut=fact.statut,
        version=fact.version,
        updated_at=fact.updated_at,
    )
    if fresh:
        await repo.fill_client_of_equipement(session, equipement_id=fact.equipement_id, client_id=fact.client_id)


async def forget_equipement(session: AsyncSession, *, fact: EquipementFact) -> None:
    await repo.delete_equipement_ref(session, equipement_id=fact.equipement_id, version=fact.version)


async def remember_technicien(session: AsyncSession, *, fact: TechnicienFact) -> None:
    await repo.upsert_technicien_ref(
        session,
        technicien_id=fact.technicien_id,
        user_id=fact.user_id,
        full_name=fact.full_name,
        is_active=fact.is_active,
        version=fact.version,
    )


async def remember_user(session: AsyncSession, *, fact: UserFact, event_time: datetime) -> None:
    await repo.upsert_user_ref(
        session,
        user_id=fact.user_id,
        role=fact.role,
        client_id=fact.client_id,
        is_active=fact.is_active,
        event_time=event_time,
    )


async def create_from_occurrence(
    session: AsyncSession, *, fact: OccurrenceFact, settings: InterventionsSettings
) -> Intervention | None:
    """One preventive intervention per plan occurrence (DOMAIN.md §5); None for a key already seen."""
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
    values = {
        "titre": f"Maintenance préventive - {nom}"[:255],
        "description": fact.commentaire,
        "type": TypeIntervention.preventive.value,
        "statut": (Statut.affectee if technicien_id else Statut.ouverte).value,
        "priorite": Priorite.normale.value,
        "urgence": False,
        "equipement_id": fact.equipement_id,
        # Unknown equipment yet: its organisation is filled in when assets' event arrives.
        "client_id": equipement.client_id if equipement else None,
        "technicien_id": technicien_id,
        "date_creation": at,
        "date_modification": at,
        "date_limite": sla_deadline(settings, Priorite.normale.value, fact.due_at),
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
    _historiser(
        session,
        intervention,
        action=ActionHistorique.creation,
        auteur=auteur,
        at=at,
        remarque=remarque,
        apres={**_snapshot(intervention), "occurrence_key": fact.occurrence_key},
    )
    await _publier(session, InterventionCreated, intervention, previous_statut=None, auteur=auteur, at=at)
    await session.flush()
    return intervention


async def record_document(session: AsyncSession, *, fact: DocumentFact, deleted: bool = False) -> None:
    """A document attached to (or removed from) an intervention: a history row (documents owns the file)."""
    intervention = await repo.intervention_by_id(session, fact.intervention_id)
    if intervention is None:
        logger.warning("document %s refers to unknown intervention %s", fact.document_id, fact.intervention_id)
        return
    auteur = Auteur(
        principal=None,
        user_agent="mif-documents (event)",
        on_behalf_of=fact.deleted_by if deleted else fact.uploaded_by,
    )
    document = {"document_id": fact.document_id, "filename": fact.filename, "categorie": fact.categorie}
    _historiser(
        session,
        intervention,
        action=ActionHistorique.document,
        auteur=auteur,
        at=now(),
        remarque=("Document supprimé : " if deleted else "Document ajouté : ")
        + (fact.filename or str(fact.document_id)),
        avant=document if deleted else None,
        apres=None if deleted else document,
    )
    await session.flush()
