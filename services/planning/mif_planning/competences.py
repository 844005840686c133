"""The competence catalogue: create, edit and delete a competence (one in use is kept)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_planning import repository as repo
from mif_planning.models import Competence
from mif_planning.schemas import CompetenceCreate, CompetenceUpdate
from mif_planning.service import CompetenceIntrouvable, CompetenceUtilisee, NomDejaPris
from mif_planning.techniciens import _changed


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
