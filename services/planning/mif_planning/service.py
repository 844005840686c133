"""Business rules of the planning service; the only place that writes outbox events.

Row-level rules live here: managers see and manage every technician and plan; a technician sees its
own profile (any other is "not found"), may change only its own `disponibilite`, and sees the plans
it is the default assignee of. Client users are refused before reaching these functions (403).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal, Role
from mif_common.datetimes import now
from mif_common.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable, Unprocessable
from mif_common.events import add_event
from mif_common.frequences import JOURS, Frequence, FrequenceInconnue, parse_frequence
from mif_common.owners import ReadThrough
from mif_planning import repository as repo
from mif_planning.config import PlanningSettings
from mif_planning.events import (
    CompetenceNiveau,
    OccurrenceDue,
    OccurrenceEvent,
    OccurrenceReminder,
    PlanOverdue,
    PlanSuspended,
    TechnicienCreated,
    TechnicienDeleted,
    TechnicienEvent,
    TechnicienUpdated,
)
from mif_planning.frequence import interval
from mif_planning.models import (
    DISPONIBILITES_MANUELLES,
    INTERVENTION_EN_COURS,
    INTERVENTION_RESOLUE,
    NIVEAU_RANG,
    ActionHistorique,
    Competence,
    Disponibilite,
    EquipementRef,
    Niveau,
    Occurrence,
    Plan,
    StatutPlan,
    Technicien,
    TechnicienCompetence,
    UserRef,
)
from mif_planning.schemas import (
    CompetenceAttribuee,
    CompetenceCreate,
    CompetenceNiveauOut,
    CompetenceUpdate,
    EquipementEmbed,
    EquipementFact,
    InterventionFact,
    PlanCreate,
    PlanOut,
    PlanUpdate,
    TechnicienCreate,
    TechnicienEmbed,
    TechnicienOut,
    TechnicienUpdate,
    UserFact,
    UserOut,
    as_utc,
)

logger = logging.getLogger(__name__)


class TechnicienIntrouvable(NotFound):
    slug = "technicien-not-found"


class CompetenceIntrouvable(NotFound):
    slug = "competence-not-found"


class PlanIntrouvable(NotFound):
    slug = "planning-not-found"


class FluxIntrouvable(NotFound):
    slug = "calendar-feed-not-found"


class ProfilExistant(Conflict):
    slug = "technicien-exists"


class NomDejaPris(Conflict):
    slug = "name-taken"


class CompetenceUtilisee(Conflict):
    slug = "competence-in-use"


class RoleIncompatible(BadRequest):
    """The user behind a technician profile must be an active user with role `technicien`."""

    slug = "user-not-technicien"


class ReferenceInconnue(Unprocessable):
    """A user, equipment, technician or competence that does not exist (or cannot be used)."""

    slug = "unknown-reference"


class DateTropAncienne(Unprocessable):
    """A next due date more than one interval in the past: the scheduler would have occurrences to
    catch up (it generates only the most recent one; the point is not to create work already late)."""

    slug = "prochaine-date-too-old"


class ChampReserve(Forbidden):
    slug = "field-reserved-to-managers"


class VerificationIndisponible(ServiceUnavailable):
    slug = "reference-check-unavailable"


def iso(value: datetime) -> str:
    """UTC ISO 8601 with `Z`, as the API shows dates."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def occurrence_key(planning_id: int, due_at: datetime) -> str:
    """`"<planning_id>:<due date ISO>"` (docs/events/planning-contract.md): stable across re-runs."""
    return f"{planning_id}:{due_at.astimezone(UTC).isoformat()}"


def is_technicien(principal: Principal) -> bool:
    return principal.role is Role.technicien


# --- asking the owners (replica misses) ---------------------------------------------------------


def _owner_unavailable(what: str, service: str) -> VerificationIndisponible:
    return VerificationIndisponible(
        f"Cannot check the {what} now: the {service} service did not answer. Try again in a moment.",
        headers={"Retry-After": "5"},
    )


class _AuthUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    username: str
    email: str
    full_name: str
    role: str
    is_active: bool
    updated_at: AwareDatetime


class _AssetsEquipement(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: int
    nom: str
    type: str | None = None
    statut: str
    client_id: int | None = None
    date_modification: AwareDatetime


class AuthUsers(ReadThrough[int, UserRef, _AuthUser]):
    """The users replica, asking auth on a miss as the caller."""

    def base_url(self, settings: PlanningSettings) -> str:
        return settings.auth_url

    async def replica(self, session: AsyncSession, key: int) -> UserRef | None:
        return await repo.user_ref(session, key)

    async def ask(self, key: int) -> _AuthUser | None:
        return await self.get(f"/api/v1/users/{key}", _AuthUser, unavailable=_owner_unavailable("user account", "auth"))

    async def remember(self, session: AsyncSession, answer: _AuthUser) -> None:
        # token_version is not in auth's answer; the replica only uses it for information.
        await repo.upsert_user_ref(
            session,
            user_id=answer.id,
            username=answer.username,
            email=answer.email,
            full_name=answer.full_name,
            role=answer.role,
            is_active=answer.is_active,
            token_version=0,
            synced_at=answer.updated_at,
        )


class AssetsEquipements(ReadThrough[int, EquipementRef, _AssetsEquipement]):
    """The equipment replica, asking assets on a miss as the caller."""

    def base_url(self, settings: PlanningSettings) -> str:
        return settings.assets_url

    async def replica(self, session: AsyncSession, key: int) -> EquipementRef | None:
        return await repo.equipement_ref(session, key)

    async def ask(self, key: int) -> _AssetsEquipement | None:
        return await self.get(
            f"/api/v1/equipements/{key}", _AssetsEquipement, unavailable=_owner_unavailable("equipment", "assets")
        )

    async def remember(self, session: AsyncSession, answer: _AssetsEquipement) -> None:
        await repo.upsert_equipement_ref(
            session,
            equipement_id=answer.id,
            nom=answer.nom,
            type=answer.type,
            statut=answer.statut,
            client_id=answer.client_id,
            supprime=False,
            version=0,
            updated_at=answer.date_modification,
        )


async def _known_equipement(
    session: AsyncSession, *, equipement_id: int, assets: AssetsEquipements
) -> EquipementRef | None:
    """An equipment from the replica, else from assets (once, cached). None when unknown or deleted."""
    equipement = await assets.known(session, equipement_id)
    if equipement is None or equipement.supprime:
        return None
    return equipement


# --- technicians: snapshots, events, output -----------------------------------------------------


def technicien_out(technicien: Technicien, *, charge: int) -> TechnicienOut:
    return TechnicienOut(
        id=technicien.id,
        user_id=technicien.user_id,
        user=UserOut.model_validate(technicien.user),
        equipe=technicien.equipe,
        zone=technicien.zone,
        disponibilite=Disponibilite(technicien.disponibilite),
        competences=[
            CompetenceNiveauOut(
                id=tc.competence_id, nom=tc.competence.nom, domaine=tc.competence.domaine, niveau=Niveau(tc.niveau)
            )
            for tc in technicien.competences
        ],
        is_active=technicien.is_active,
        charge_travail=charge,
        version=technicien.version,
        date_creation=technicien.date_creation,
        date_modification=technicien.date_modification,
    )


async def techniciens_out(session: AsyncSession, techniciens: Sequence[Technicien]) -> list[TechnicienOut]:
    charges = await repo.workloads(session, [t.id for t in techniciens])
    return [technicien_out(t, charge=charges.get(t.id, 0)) for t in techniciens]


async def _publish_technicien(
    session: AsyncSession, event_cls: type[TechnicienEvent], technicien: Technicien, *, at: datetime
) -> None:
    await add_event(
        session,
        event_cls(
            technicien_id=technicien.id,
            user_id=technicien.user_id,
            full_name=technicien.user.full_name,
            username=technicien.user.username,
            email=technicien.user.email,
            equipe=technicien.equipe,
            zone=technicien.zone,
            disponibilite=technicien.disponibilite,
            is_active=technicien.is_active,
            competences=[
                CompetenceNiveau(id=tc.competence_id, nom=tc.competence.nom, niveau=tc.niveau)
                for tc in technicien.competences
            ],
            version=technicien.version,
            occurred_at=at,
        ),
        subject=technicien.id,
    )


async def _changed(session: AsyncSession, technicien: Technicien, *, at: datetime) -> None:
    """A change to a profile: bump its version, reload what the snapshot shows, publish it."""
    technicien.version += 1
    technicien.date_modification = at
    await session.flush()
    await session.refresh(technicien, ["competences", "user"])
    event_cls = TechnicienDeleted if not technicien.is_active else TechnicienUpdated
    await _publish_technicien(session, event_cls, technicien, at=at)


async def own_profile(session: AsyncSession, principal: Principal) -> Technicien | None:
    """The caller's own technician profile, if it has one."""
    return await repo.technicien_of_user(session, principal.user_id)


async def get_technicien(session: AsyncSession, *, technicien_id: int, principal: Principal) -> Technicien:
    """One profile; a technician asking for another's gets the same 404 as for a missing one."""
    technicien = await repo.technicien_by_id(session, technicien_id)
    if technicien is None or (is_technicien(principal) and technicien.user_id != principal.user_id):
        raise TechnicienIntrouvable(f"No technician with id {technicien_id}.")
    return technicien


async def _technicien_for_update(session: AsyncSession, *, technicien_id: int, principal: Principal) -> Technicien:
    technicien = await repo.technicien_by_id(session, technicien_id, for_update=True)
    if technicien is None or (is_technicien(principal) and technicien.user_id != principal.user_id):
        raise TechnicienIntrouvable(f"No technician with id {technicien_id}.")
    return technicien


async def _competences_exist(session: AsyncSession, attributions: Sequence[CompetenceAttribuee]) -> None:
    wanted = {a.id for a in attributions}
    known = await repo.competences_by_ids(session, wanted)
    missing = sorted(wanted - set(known))
    if missing:
        listed = ", ".join(str(i) for i in missing)
        raise ReferenceInconnue(
            f"No competence with id {listed}; create it first (POST /api/v1/techniciens/competences).",
            errors=[{"field": "competences", "message": f"unknown competence id {i}"} for i in missing],
        )


def _set_competences(technicien: Technicien, attributions: Sequence[CompetenceAttribuee]) -> bool:
    """Make the profile's competences exactly `attributions`; True when something changed."""
    wanted = {a.id: a.niveau.value for a in attributions}
    changed = False
    for link in list(technicien.competences):
        if link.competence_id not in wanted:
            technicien.competences.remove(link)
            changed = True
        elif link.niveau != wanted[link.competence_id]:
            link.niveau = wanted[link.competence_id]
            changed = True
    held = {link.competence_id for link in technicien.competences}
    for competence_id, niveau in wanted.items():
        if competence_id not in held:
            technicien.competences.append(TechnicienCompetence(competence_id=competence_id, niveau=niveau))
            changed = True
    return changed


async def create_technicien(session: AsyncSession, *, data: TechnicienCreate, auth: AuthUsers) -> Technicien:
    """A profile for an active auth user whose role is `technicien` (400 otherwise), one per user."""
    user = await auth.known(session, data.user_id)
    if user is None:
        raise ReferenceInconnue(
            f"No user with id {data.user_id}; create the user account first (POST /api/v1/users).",
            errors=[{"field": "user_id", "message": "unknown user"}],
        )
    if user.role != Role.technicien.value:
        raise RoleIncompatible(
            f"The user '{user.username}' (id {user.user_id}) has the role '{user.role}'; only a user with the "
            "role 'technicien' can have a technician profile.",
            errors=[{"field": "user_id", "message": f"role is {user.role}, not technicien"}],
        )
    if not user.is_active:
        raise RoleIncompatible(
            f"The user '{user.username}' (id {user.user_id}) is deactivated; reactivate the account first.",
            errors=[{"field": "user_id", "message": "deactivated user"}],
        )
    existing = await repo.technicien_of_user(session, user.user_id)
    if existing is not None:
        hint = "" if existing.is_active else " (deleted: reactivate it with PUT and is_active true)"
        raise ProfilExistant(
            f"The user '{user.username}' already has a technician profile, id {existing.id}{hint}.",
            errors=[{"field": "user_id", "message": "already has a technician profile"}],
            technicien_id=existing.id,
        )
    attributions = data.attributions()
    await _competences_exist(session, attributions)
    at = now()
    technicien = Technicien(
        user_id=user.user_id,
        equipe=data.equipe,
        zone=data.zone,
        disponibilite=data.disponibilite.value,
        is_active=True,
        version=1,
        date_creation=at,
        date_modification=at,
        competences=[TechnicienCompetence(competence_id=a.id, niveau=a.niveau.value) for a in attributions],
    )
    session.add(technicien)
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_technicien_user_id" in str(exc.orig):
            raise ProfilExistant(f"The user '{user.username}' already has a technician profile.") from exc
        raise
    await session.refresh(technicien, ["competences", "user"])
    await _publish_technicien(session, TechnicienCreated, technicien, at=at)
    return technicien


async def update_technicien(
    session: AsyncSession, *, technicien_id: int, data: TechnicienUpdate, actor: Principal
) -> Technicien:
    """Partial update. A technician may change only its own `disponibilite`."""
    technicien = await _technicien_for_update(session, technicien_id=technicien_id, principal=actor)
    sent = data.model_fields_set
    if is_technicien(actor) and sent - {"disponibilite"}:
        fields = ", ".join(sorted(sent - {"disponibilite"}))
        raise ChampReserve(
            f"A technician may only change its own disponibilite; {fields} can only be changed by a manager.",
            errors=[{"field": f, "message": "reserved to managers"} for f in sorted(sent - {"disponibilite"})],
        )
    changed = False
    for field in ("equipe", "zone", "is_active"):
        if field in sent and getattr(technicien, field) != getattr(data, field):
            setattr(technicien, field, getattr(data, field))
            changed = True
    if data.disponibilite is not None and technicien.disponibilite != data.disponibilite.value:
        technicien.disponibilite = data.disponibilite.value
        changed = True
    attributions = data.attributions()
    if attributions is not None:
        await _competences_exist(session, attributions)
        changed = _set_competences(technicien, attributions) or changed
    if changed:
        await _changed(session, technicien, at=now())
    return technicien


async def delete_technicien(session: AsyncSession, *, technicien_id: int, actor: Principal) -> None:
    """Soft delete: the profile stays (interventions and plans refer to it), inactive."""
    technicien = await _technicien_for_update(session, technicien_id=technicien_id, principal=actor)
    if not technicien.is_active:
        return
    technicien.is_active = False
    await _changed(session, technicien, at=now())


# --- iCalendar feed secrets ---------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_feed_token(session: AsyncSession, *, technicien_id: int, principal: Principal) -> tuple[str, datetime]:
    """A new secret for the technician's feed URL (the previous URL stops working). Shown once."""
    technicien = await _technicien_for_update(session, technicien_id=technicien_id, principal=principal)
    token = secrets.token_urlsafe(32)
    technicien.ical_token_hash = hash_token(token)
    technicien.ical_token_created_at = now()
    await session.flush()
    return token, technicien.ical_token_created_at


async def revoke_feed_token(session: AsyncSession, *, technicien_id: int, principal: Principal) -> None:
    technicien = await _technicien_for_update(session, technicien_id=technicien_id, principal=principal)
    technicien.ical_token_hash = None
    technicien.ical_token_created_at = None
    await session.flush()


async def technicien_by_feed_token(session: AsyncSession, *, token: str) -> Technicien:
    """The technician whose feed URL carries `token`; anything else (or a deleted technician, or a
    deactivated user) is "not found"."""
    technicien = await repo.technicien_by_token_hash(session, hash_token(token)) if token else None
    if technicien is None or not technicien.is_active or not technicien.user.is_active:
        raise FluxIntrouvable("No calendar feed at this address.")
    return technicien


# --- competences --------------------------------------------------------------------------------


async def _ensure_competence_name_free(session: AsyncSession, nom: str, *, except_id: int | None) -> None:
    other = await repo.competence_named(session, nom, except_id=except_id)
    if other is not None:
        raise NomDejaPris(
            f"A competence named '{other.nom}' already exists (id {other.id}); choose another name.",
            errors=[{"field": "nom", "message": "already used by another competence"}],
        )


async def _flush_competence(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        if "uq_competence_nom_lower" in str(exc.orig):
            raise NomDejaPris("A competence with this name already exists.") from exc
        raise


async def create_competence(session: AsyncSession, *, data: CompetenceCreate) -> Competence:
    await _ensure_competence_name_free(session, data.nom, except_id=None)
    at = now()
    competence = Competence(**data.model_dump(), date_creation=at, date_modification=at)
    session.add(competence)
    await _flush_competence(session)
    return competence


async def get_competence(session: AsyncSession, *, competence_id: int) -> Competence:
    competence = await repo.competence_by_id(session, competence_id)
    if competence is None:
        raise CompetenceIntrouvable(f"No competence with id {competence_id}.")
    return competence


async def update_competence(session: AsyncSession, *, competence_id: int, data: CompetenceUpdate) -> Competence:
    """Partial update; a new name is announced in the snapshots of the technicians holding it."""
    competence = await repo.competence_by_id(session, competence_id, for_update=True)
    if competence is None:
        raise CompetenceIntrouvable(f"No competence with id {competence_id}.")
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if getattr(competence, k) != v}
    if not changes:
        return competence
    if "nom" in changes:
        await _ensure_competence_name_free(session, changes["nom"], except_id=competence.id)
    for key, value in changes.items():
        setattr(competence, key, value)
    at = now()
    competence.date_modification = at
    await _flush_competence(session)
    if "nom" in changes:
        for technicien in await repo.lock_techniciens(session, await repo.competence_holders(session, competence.id)):
            await _changed(session, technicien, at=at)
    return competence


async def delete_competence(session: AsyncSession, *, competence_id: int) -> None:
    """Delete a competence no technician holds (409 otherwise: take it off their profiles first)."""
    competence = await repo.competence_by_id(session, competence_id, for_update=True)
    if competence is None:
        raise CompetenceIntrouvable(f"No competence with id {competence_id}.")
    holders = await repo.competence_holders(session, competence.id)
    if holders:
        raise CompetenceUtilisee(
            f"The competence '{competence.nom}' is held by {len(holders)} technician(s); remove it from their "
            "profiles first.",
            techniciens=holders,
        )
    await session.delete(competence)
    await session.flush()


# --- recommendation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recommandation:
    technicien: Technicien
    competence: Competence | None
    niveau: Niveau | None
    charge: int
    experience: int


async def _competence_for(session: AsyncSession, competence: str) -> Competence:
    text = competence.strip()
    found = (
        await repo.competence_by_id(session, int(text))
        if text.isdigit() and len(text) <= 18
        else await repo.competence_named(session, text)
    )
    if found is None:
        raise ReferenceInconnue(
            f"No competence '{competence}' (give its name or id; see GET /api/v1/techniciens/competences).",
            errors=[{"field": "competence", "message": "unknown competence"}],
        )
    return found


async def recommend(
    session: AsyncSession,
    *,
    equipement_id: int | None,
    competence: str | None,
    limit: int,
    assets: AssetsEquipements,
) -> list[Recommandation]:
    """Technicians who can take work now (`disponible`, then `occupe`; never on leave, training or
    unavailable), best first: highest level in the competence (the one asked for, else the one matching
    the equipment's type), available before busy, lowest open workload, most interventions already done
    on the equipment. Interventions' one-click dispatch assigns the first of this list."""
    wanted = await _competence_for(session, competence) if competence else None
    known = await _known_equipement(session, equipement_id=equipement_id, assets=assets) if equipement_id else None
    if equipement_id is not None and known is None:
        raise ReferenceInconnue(
            f"No equipment with id {equipement_id}.",
            errors=[{"field": "equipement_id", "message": "unknown equipment"}],
        )
    if wanted is None and known is not None and known.type:
        wanted = await repo.competence_for_type(session, known.type)
    candidates = await repo.candidate_techniciens(session, [Disponibilite.disponible.value, Disponibilite.occupe.value])
    charges = await repo.workloads(session, [t.id for t in candidates])
    experience = await repo.interventions_on_equipement(session, equipement_id) if equipement_id else {}
    ranked = []
    for technicien in candidates:
        niveau = next(
            (Niveau(tc.niveau) for tc in technicien.competences if wanted and tc.competence_id == wanted.id), None
        )
        ranked.append(
            Recommandation(
                technicien=technicien,
                competence=wanted,
                niveau=niveau,
                charge=charges.get(technicien.id, 0),
                experience=experience.get(technicien.id, 0),
            )
        )
    ranked.sort(
        key=lambda r: (
            -(NIVEAU_RANG[r.niveau] if r.niveau else 0),
            r.technicien.disponibilite != Disponibilite.disponible.value,
            r.charge,
            -r.experience,
            r.technicien.id,
        )
    )
    return ranked[:limit]


# --- plans --------------------------------------------------------------------------------------


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
    noms = await repo.equipement_noms(session, {p.equipement_id for p in plans})
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


# --- the scheduler's steps (scheduler.py owns their transactions) -------------------------------


async def _default_assignee(session: AsyncSession, plan: Plan) -> int | None:
    """The plan's technician, if it is still active (a deleted one is not assigned new work)."""
    if plan.technicien_id is None:
        return None
    technicien = await repo.technicien_by_id(session, plan.technicien_id)
    return technicien.id if technicien is not None and technicien.is_active else None


def deadline(due_at: datetime, frequence: Frequence, settings: PlanningSettings) -> datetime:
    """When an occurrence whose intervention is not resolved becomes overdue: the next due date, or
    the grace period after its own due date if that comes first."""
    return due_at + min(interval(frequence), timedelta(minutes=settings.overdue_grace_minutes))


async def emit_due_occurrences(session: AsyncSession, *, plan: Plan, at: datetime, settings: PlanningSettings) -> int:
    """Generate a claimed (locked) plan's due occurrence: ONE `planning.occurrence.due.v1`, for the most
    recent occurrence due by `at`, however many were missed (a stopped suite, a plan resumed after a
    suspension, a date far in the past), as cron-like schedulers do: the missed ones would all be late
    already. The skipped ones go to the plan's history; `derniere_date` becomes the generated one and
    `prochaine_date` the next one to come. O(1) in the number of missed intervals (arithmetic, no loop).

    The occurrence key (plan id + due date) keeps it exactly-once. Before generating, the circuit breaker:
    a plan that would exceed `max_occurrences_per_plan_per_hour` is suspended instead. Returns how many
    events were written (0 or 1)."""
    step = interval(Frequence(plan.frequence))
    first = plan.prochaine_date
    if first > at:
        return 0
    skipped = (at - first) // step  # whole intervals from the first missed occurrence to now
    due = first + skipped * step  # the most recent occurrence due by `at`
    key = occurrence_key(plan.id, due)
    equipement = await repo.equipement_ref(session, plan.equipement_id)
    technicien_id = await _default_assignee(session, plan)
    existing = await repo.occurrence_by_key(session, key)
    if (existing is None or existing.emitted_at is None) and await _circuit_breaker_trips(
        session, plan=plan, due=due, at=at, settings=settings, equipement=equipement, technicien_id=technicien_id
    ):
        return 0
    if skipped:
        await repo.add_historique(
            session,
            _skipped_rows(plan.id, first=first, count=skipped, step=step, replaced_by=key, at=at, settings=settings),
        )
    fresh = await repo.record_occurrence(
        session,
        values=_occurrence_row(
            plan,
            key=key,
            due=due,
            technicien_id=technicien_id,
            emitted_at=at,
            deadline_at=deadline(due, Frequence(plan.frequence), settings),
        ),
        stamp="emitted_at",
    )
    if fresh:
        await _publish_occurrence(
            session,
            OccurrenceDue,
            plan=plan,
            key=key,
            due=due,
            equipement=equipement,
            technicien_id=technicien_id,
            at=at,
        )
    plan.derniere_date = due
    plan.prochaine_date = due + step
    plan.date_modification = at
    await session.flush()
    return int(fresh)


async def _publish_occurrence(
    session: AsyncSession,
    event_cls: type[OccurrenceEvent],
    *,
    plan: Plan,
    key: str,
    due: datetime,
    equipement: EquipementRef | None,
    technicien_id: int | None,
    at: datetime,
    **extra: Any,
) -> None:
    """`planning.occurrence.due|reminder.v1` for one occurrence of `plan`."""
    await add_event(
        session,
        event_cls(
            occurrence_key=key,
            planning_id=plan.id,
            equipement_id=plan.equipement_id,
            equipement_nom=equipement.nom if equipement else None,
            technicien_id=technicien_id,
            due_at=due,
            frequence=plan.frequence,
            commentaire=plan.commentaire,
            occurred_at=at,
            **extra,
        ),
        subject=plan.id,
    )


def _skipped_rows(
    planning_id: int,
    *,
    first: datetime,
    count: int,
    step: timedelta,
    replaced_by: str,
    at: datetime,
    settings: PlanningSettings,
) -> list[dict[str, Any]]:
    """History rows for `count` skipped occurrences from `first` on, oldest first: the most recent
    `scheduler_skipped_history_cap` one row each, the older ones in one summary row."""
    recorded = min(count, settings.scheduler_skipped_history_cap)
    summarised = count - recorded
    action = ActionHistorique.occurrences_sautees
    rows = []
    if summarised:
        detail = {
            "nombre": summarised,
            "premiere": iso(first),
            "derniere": iso(first + (summarised - 1) * step),
            "remplacees_par": replaced_by,
        }
        rows.append(_historique_row(planning_id, action, detail, user_id=None, at=at))
    for n in range(summarised, count):
        due = first + n * step
        detail = {
            "nombre": 1,
            "due_at": iso(due),
            "occurrence_key": occurrence_key(planning_id, due),
            "remplacees_par": replaced_by,
        }
        rows.append(_historique_row(planning_id, action, detail, user_id=None, at=at))
    return rows


async def _circuit_breaker_trips(
    session: AsyncSession,
    *,
    plan: Plan,
    due: datetime,
    at: datetime,
    settings: PlanningSettings,
    equipement: EquipementRef | None,
    technicien_id: int | None,
) -> bool:
    """Whether generating one more occurrence of the plan would exceed `max_occurrences_per_plan_per_hour`
    over the last hour (since its last automatic suspension, if later: a manager who resumes a plan gives
    it a fresh hour). If so the plan is suspended, its history says why, and `planning.plan.suspended.v1`
    tells the managers, once (the plan, suspended, is no longer claimed)."""
    limit = settings.max_occurrences_per_plan_per_hour
    generated = await repo.emitted_between(session, plan.id, after=at - timedelta(hours=1), until=at)
    if generated < limit:
        return False
    reason = (
        f"Le plan n°{plan.id} a déjà généré {generated} intervention(s) dans la dernière heure (limite : {limit} "
        f"par heure) ; il est suspendu pour ne pas créer d'interventions en rafale. Vérifiez sa prochaine date et "
        "sa fréquence, puis réactivez-le (statut actif)."
    )
    previous = plan.statut
    plan.statut = StatutPlan.suspendu.value
    plan.date_modification = at
    await session.flush()
    detail = {
        "raison": reason,
        "generees_derniere_heure": generated,
        "limite_par_heure": limit,
        "occurrence_non_generee": iso(due),
        "statut_precedent": previous,
    }
    await _historique(session, plan.id, ActionHistorique.suspension_automatique, detail, user_id=None, at=at)
    await add_event(
        session,
        PlanSuspended(
            planning_id=plan.id,
            equipement_id=plan.equipement_id,
            equipement_nom=equipement.nom if equipement else None,
            technicien_id=technicien_id,
            frequence=plan.frequence,
            due_at=due,
            generated_last_hour=generated,
            max_per_hour=limit,
            reason=reason,
            occurred_at=at,
        ),
        subject=plan.id,
    )
    logger.warning("plan %s suspended by the circuit breaker: %s", plan.id, reason)
    return True


def _occurrence_row(
    plan: Plan, *, key: str, due: datetime, technicien_id: int | None, **stamps: datetime
) -> dict[str, Any]:
    """An occurrence of `plan` as `record_occurrence` stores it, with what the caller stamps on it."""
    return {
        "occurrence_key": key,
        "planning_id": plan.id,
        "equipement_id": plan.equipement_id,
        "technicien_id": technicien_id,
        "due_at": due,
        **stamps,
    }


async def send_reminder(session: AsyncSession, *, plan: Plan, at: datetime, settings: PlanningSettings) -> bool:
    """`planning.occurrence.reminder.v1` for the plan's next occurrence, once per occurrence key."""
    due = plan.prochaine_date
    key = occurrence_key(plan.id, due)
    technicien_id = await _default_assignee(session, plan)
    fresh = await repo.record_occurrence(
        session,
        values=_occurrence_row(plan, key=key, due=due, technicien_id=technicien_id, reminder_sent_at=at),
        stamp="reminder_sent_at",
    )
    if fresh:
        await _publish_occurrence(
            session,
            OccurrenceReminder,
            plan=plan,
            key=key,
            due=due,
            equipement=await repo.equipement_ref(session, plan.equipement_id),
            technicien_id=technicien_id,
            at=at,
            lead_minutes=settings.reminder_lead_minutes,
        )
    return fresh


async def report_overdue(session: AsyncSession, *, occurrence: Occurrence, at: datetime) -> None:
    """A claimed occurrence is past its deadline: the plan goes `en_retard` and the fact is published,
    once (`overdue_at`)."""
    occurrence.overdue_at = at
    plan = await repo.plan_by_id(session, occurrence.planning_id, for_update=True)
    if plan is not None and plan.statut == StatutPlan.actif:
        plan.statut = StatutPlan.en_retard.value
        plan.date_modification = at
    equipement = await repo.equipement_ref(session, occurrence.equipement_id)
    await session.flush()
    await add_event(
        session,
        PlanOverdue(
            planning_id=occurrence.planning_id,
            equipement_id=occurrence.equipement_id,
            equipement_nom=equipement.nom if equipement else None,
            technicien_id=occurrence.technicien_id,
            occurrence_key=occurrence.occurrence_key,
            intervention_id=occurrence.intervention_id,
            due_at=occurrence.due_at,
            occurred_at=at,
        ),
        subject=occurrence.planning_id,
    )


# --- reactions to other services' events --------------------------------------------------------


async def remember_user(session: AsyncSession, *, fact: UserFact, at: datetime) -> None:
    """Record what auth says about a user; a technician whose name or address changed is announced."""
    before = await repo.user_ref(session, fact.user_id)
    shown = (before.username, before.email, before.full_name) if before else None
    fresh = await repo.upsert_user_ref(session, **fact.model_dump(), synced_at=at)
    if not fresh or shown is None or shown == (fact.username, fact.email, fact.full_name):
        return
    technicien = await repo.technicien_of_user(session, fact.user_id, for_update=True)
    if technicien is not None:
        await _changed(session, technicien, at=now())


async def remember_equipement(session: AsyncSession, *, fact: EquipementFact, deleted: bool) -> None:
    """Record what assets says about an equipment. Once it is retired or deleted, its plans end
    (`termine`): nothing is generated for equipment out of service."""
    fresh = await repo.upsert_equipement_ref(session, **fact.model_dump(), supprime=deleted)
    if not fresh or not (deleted or fact.statut == "retire"):
        return
    ongoing = [StatutPlan.actif.value, StatutPlan.en_retard.value, StatutPlan.suspendu.value]
    at = now()
    for plan in await repo.plans_of_equipement(session, fact.equipement_id, ongoing):
        plan.statut = StatutPlan.termine.value
        plan.date_modification = at
    await session.flush()


async def _refresh_disponibilites(session: AsyncSession, technicien_ids: set[int], *, at: datetime) -> None:
    """`occupe` while an assigned intervention is `en_cours`, `disponible` when none is; an absence
    set by a person (conge, formation, indisponible) is never overridden. The profile is loaded (for
    its event) only when its availability really changes."""
    for row in await repo.lock_disponibilites(session, technicien_ids):
        if not row["is_active"] or row["disponibilite"] in DISPONIBILITES_MANUELLES:
            continue
        busy = await repo.has_intervention_en_cours(session, row["id"])
        target = Disponibilite.occupe if busy else Disponibilite.disponible
        if row["disponibilite"] != target.value:
            technicien = await repo.technicien_by_id(session, row["id"])
            assert technicien is not None  # locked above
            technicien.disponibilite = target.value
            await _changed(session, technicien, at=at)


async def _link_occurrence(session: AsyncSession, fact: InterventionFact) -> Occurrence | None:
    """The plan occurrence a preventive intervention was generated for, linked on first sight.

    Matched by the event's `occurrence_key` when it carries one, else by its `planning_id` (the oldest
    occurrence of that plan still waiting for its intervention), else, for an intervention created by
    the scheduler (`actor_id` null), by its equipment (the oldest waiting occurrence of that equipment).
    """
    linked = await repo.occurrence_of_intervention(session, fact.intervention_id)
    if linked is not None or fact.type != "preventive":
        return linked
    for _ in range(3):
        candidate = await _unlinked_occurrence_for(session, fact)
        if candidate is None:
            return None
        # Lock the plan before its occurrence: that is the order of every writer of plans (API,
        # scheduler; deleting a plan cascades to its occurrences). The reverse order deadlocked with a
        # plan deleted while its intervention's event was being handled.
        if await repo.plan_by_id(session, candidate.planning_id, for_update=True) is None:
            return None
        occurrence = await repo.occurrence_by_id(session, candidate.id, for_update=True)
        if occurrence is not None and occurrence.intervention_id is None:
            occurrence.intervention_id = fact.intervention_id
            await session.flush()
            return occurrence
        if fact.occurrence_key:
            return None  # that exact occurrence is taken (or gone): nothing else to link
    return None


async def _unlinked_occurrence_for(session: AsyncSession, fact: InterventionFact) -> Occurrence | None:
    if fact.occurrence_key:
        occurrence = await repo.occurrence_by_key(session, fact.occurrence_key)
        return occurrence if occurrence is not None and occurrence.intervention_id is None else None
    if fact.planning_id is not None:
        return await repo.oldest_unlinked_occurrence(session, planning_id=fact.planning_id, equipement_id=None)
    if fact.actor_id is None:
        return await repo.oldest_unlinked_occurrence(session, planning_id=None, equipement_id=fact.equipement_id)
    return None


def _availability_concerned(previous: Any, fact: InterventionFact) -> set[int]:
    """The technicians whose availability this fact may change: availability only depends on having an
    intervention `en_cours`, so a fact that neither enters nor leaves that statut, nor moves an
    intervention in it between technicians, concerns nobody."""
    before = (previous["technicien_id"], previous["statut"]) if previous is not None else (None, None)
    after = (fact.technicien_id, fact.statut)
    if before == after or INTERVENTION_EN_COURS not in (before[1], after[1]):
        return set()
    return {t for t in (before[0], after[0]) if t is not None}


async def track_intervention(session: AsyncSession, *, fact: InterventionFact) -> None:
    """Keep the replica current; then the availability of the technicians concerned, the link to a
    plan occurrence, and a late plan that its last overdue occurrence no longer holds back."""
    previous = await repo.intervention_ref_locked(session, fact.intervention_id)
    resolved = fact.statut in INTERVENTION_RESOLUE
    fresh = await repo.upsert_intervention_ref(
        session,
        values={
            "intervention_id": fact.intervention_id,
            "technicien_id": fact.technicien_id,
            "equipement_id": fact.equipement_id,
            "statut": fact.statut,
            "type": fact.type,
            "titre": fact.titre,
            "priorite": fact.priorite,
            "planning_id": fact.planning_id,
            "date_limite": fact.date_limite,
            "created_at": fact.occurred_at,
            "started_at": fact.occurred_at if fact.statut == INTERVENTION_EN_COURS else None,
            "ended_at": fact.occurred_at if resolved else None,
            "occurred_at": fact.occurred_at,
        },
    )
    if not fresh:
        return
    # Only a preventive intervention is linked to an occurrence, and only a resolved one can release
    # its plan from `en_retard`: the other facts need not look.
    occurrence = await _link_occurrence(session, fact) if fact.type == "preventive" or resolved else None
    at = now()
    await _refresh_disponibilites(session, _availability_concerned(previous, fact), at=at)
    if resolved and occurrence is not None and occurrence.overdue_at is not None:
        plan = await repo.plan_by_id(session, occurrence.planning_id, for_update=True)
        if (
            plan is not None
            and plan.statut == StatutPlan.en_retard
            and not await repo.has_open_overdue(session, plan.id)
        ):
            plan.statut = StatutPlan.actif.value
            plan.date_modification = at
            await session.flush()
