"""Technicians: profiles, the competences they hold, availability, workload, iCalendar feed secrets
and the recommendation of who takes work now."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal, Role
from mif_common.datetimes import now
from mif_common.events import add_event
from mif_planning import replicas_repository as replicas_repo
from mif_planning import repository as repo
from mif_planning.events import (
    CompetenceNiveau,
    TechnicienCreated,
    TechnicienDeleted,
    TechnicienEvent,
    TechnicienUpdated,
)
from mif_planning.models import NIVEAU_RANG, Competence, Disponibilite, Niveau, Technicien, TechnicienCompetence
from mif_planning.owners import AssetsEquipements, AuthUsers, _known_equipement
from mif_planning.schemas import (
    CompetenceAttribuee,
    CompetenceNiveauOut,
    TechnicienCreate,
    TechnicienOut,
    TechnicienUpdate,
    UserOut,
)
from mif_planning.service import (
    ChampReserve,
    FluxIntrouvable,
    ProfilExistant,
    ReferenceInconnue,
    RoleIncompatible,
    TechnicienIntrouvable,
    is_technicien,
)


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
    charges = await replicas_repo.workloads(session, [t.id for t in techniciens])
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
    charges = await replicas_repo.workloads(session, [t.id for t in candidates])
    experience = await replicas_repo.interventions_on_equipement(session, equipement_id) if equipement_id else {}
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
