"""What the interventions service's concept modules share: refusals, who acts, reading one
intervention for the caller, and the history row and event every change writes.

The rules live in one module per concept (the only places that write outbox events and history; they
flush, never commit): `creation` (new interventions, idempotency, from a plan occurrence), `editing`
(field edits), `transitions` (workflow moves), `comments`, `owners` (the replicas read on the write
path, asking assets on a miss) and `replicas` (other services' facts); the lateness pass is in `jobs`.

Row-level rules live here: managers see every intervention, a technician those assigned to them, a
client user its organisation's; anything else is "not found", so existence does not leak. Every change
writes its `historique` row and its event in the caller's transaction; writes lock the intervention row
first, then check `If-Match` and the workflow on what they locked, so concurrent changes serialise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mif_common.auth import Principal, Role
from mif_common.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ServiceUnavailable, Unprocessable
from mif_common.events import add_event
from mif_interventions import repository as repo
from mif_interventions.config import InterventionsSettings
from mif_interventions.events import InterventionEvent
from mif_interventions.models import ActionHistorique, Historique, Intervention
from mif_interventions.repository import Visibilite
from mif_interventions.workflow import Acteur


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


async def scope_of(session: AsyncSession | AsyncConnection, principal: Principal) -> Visibilite:
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


class Suivi(Protocol):
    """What a history row records of the intervention it is about: an `Intervention`, or what a statement
    that wrote the row without loading it answered (the parts cost, `replicas.record_parts_cost`)."""

    @property
    def id(self) -> int: ...

    @property
    def statut(self) -> str: ...


def _historiser(
    session: AsyncSession,
    intervention: Suivi,
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
            date_creation=intervention.date_creation,
            date_limite=intervention.date_limite,
            date_debut_travaux=intervention.date_debut_travaux,
            date_cloture=intervention.date_cloture,
            duree_reelle=intervention.duree_reelle,
        ),
        subject=intervention.id,
    )


def _introuvable(intervention_id: int) -> InterventionIntrouvable:
    return InterventionIntrouvable(f"No intervention with id {intervention_id}.")


async def get_intervention(
    session: AsyncSession, *, intervention_id: int, principal: Principal, scope: Visibilite | None = None
) -> Intervention:
    """One intervention the caller may see (`scope`, when already known); any other is "not found"."""
    if scope is None:
        scope = await scope_of(session, principal)
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
        scope = await scope_of(session, auteur.principal) if auteur.principal is not None else Visibilite()
    intervention = await repo.intervention_by_id(session, intervention_id, for_update=True)
    if intervention is None or not scope.allows(intervention):
        raise _introuvable(intervention_id)
    check_if_match(intervention, if_match)
    return intervention
