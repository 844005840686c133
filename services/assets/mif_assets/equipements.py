"""Equipment: create, read, edit, delete, and its statut history."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets import repository as repo
from mif_assets.events import (
    EquipementCreated,
    EquipementDeleted,
    EquipementEvent,
    EquipementRetired,
    EquipementStatusChanged,
    EquipementUpdated,
)
from mif_assets.models import Equipement, EquipementStatutHistorique, SourceStatut, StatutEquipement
from mif_assets.schemas import EquipementCreate, EquipementUpdate
from mif_assets.service import (
    ClientInvalide,
    EquipementIntrouvable,
    EquipementReference,
    NomDejaPris,
    _check_after,
    _flush_unique,
    _plain,
)
from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.events import add_event


def _equipement_event(event_cls: type[EquipementEvent], equipement: Equipement, **extra: Any) -> EquipementEvent:
    return event_cls(
        equipement_id=equipement.id,
        nom=equipement.nom,
        type=equipement.type,
        localisation=equipement.localisation,
        numero_serie=equipement.numero_serie,
        statut=equipement.statut,
        criticite=equipement.criticite,
        client_id=equipement.client_id,
        frequence_entretien=equipement.frequence_entretien,
        version=equipement.version,
        updated_at=equipement.date_modification,
        **extra,
    )


async def _publish_equipement(
    session: AsyncSession, event_cls: type[EquipementEvent], equipement: Equipement, **extra: Any
) -> None:
    await add_event(session, _equipement_event(event_cls, equipement, **extra), subject=equipement.id)


async def _ensure_equipement_free(
    session: AsyncSession, *, nom: str | None, numero_serie: str | None, except_id: int | None
) -> None:
    errors, sentences = [], []
    if nom is not None and (other := await repo.equipement_named(session, nom, except_id=except_id)):
        errors.append({"field": "nom", "message": "already used by another equipment"})
        sentences.append(f"an equipment named '{other.nom}' already exists (id {other.id})")
    if numero_serie is not None and (
        other := await repo.equipement_with_serial(session, numero_serie, except_id=except_id)
    ):
        errors.append({"field": "numero_serie", "message": "already used by another equipment"})
        sentences.append(f"the serial number '{other.numero_serie}' is already used by '{other.nom}' (id {other.id})")
    if errors:
        sentence = " and ".join(sentences)
        raise NomDejaPris(sentence[0].upper() + sentence[1:] + ".", errors=errors)


async def _ensure_active_client(session: AsyncSession, client_id: int) -> None:
    # A shared lock: the client cannot be deactivated until this transaction ends.
    client = await repo.client_by_id(session, client_id, for_share=True)
    if client is None:
        raise ClientInvalide(
            f"No client organisation with id {client_id}; create it first or pick an existing one.",
            errors=[{"field": "client_id", "message": "unknown client organisation"}],
        )
    if not client.is_active:
        raise ClientInvalide(
            f"The client organisation '{client.nom_entreprise}' (id {client_id}) is deactivated; "
            "equipment cannot be attached to it.",
            errors=[{"field": "client_id", "message": "deactivated client organisation"}],
        )


def _check_garantie(mise_en_service: date | None, fin_garantie: date | None) -> None:
    _check_after(
        mise_en_service,
        fin_garantie,
        start_field="date_mise_en_service",
        end_field="date_fin_garantie",
        strictly=False,
    )


async def _record_statut(
    session: AsyncSession,
    equipement: Equipement,
    *,
    ancien: str | None,
    motif: str | None,
    source: SourceStatut,
    user_id: int | None,
    event_id: str | None = None,
    intervention_id: int | None = None,
) -> None:
    """The history row of a statut transition, and its events (the statut is already set)."""
    session.add(
        EquipementStatutHistorique(
            equipement_id=equipement.id,
            ancien_statut=ancien,
            nouveau_statut=equipement.statut,
            motif=motif,
            source=source.value,
            user_id=user_id,
            event_id=event_id,
            horodatage=now(),
        )
    )
    await session.flush()
    if ancien is None:  # the creation row: announced by `created`
        return
    await _publish_equipement(
        session,
        EquipementStatusChanged,
        equipement,
        ancien_statut=ancien,
        motif=motif,
        source=source.value,
        user_id=user_id,
        intervention_id=intervention_id,
    )
    if equipement.statut == StatutEquipement.retire:
        await _publish_equipement(session, EquipementRetired, equipement, ancien_statut=ancien, motif=motif)


async def create_equipement(session: AsyncSession, *, data: EquipementCreate, actor: Principal) -> Equipement:
    values = _plain(data.model_dump())
    _check_garantie(values["date_mise_en_service"], values["date_fin_garantie"])
    await _ensure_equipement_free(session, nom=values["nom"], numero_serie=values["numero_serie"], except_id=None)
    if values["client_id"] is not None:
        await _ensure_active_client(session, values["client_id"])
    equipement = Equipement(**values, version=1)
    session.add(equipement)
    await _flush_unique(session)
    await session.refresh(equipement)
    await _publish_equipement(session, EquipementCreated, equipement)
    await _record_statut(
        session, equipement, ancien=None, motif="Création", source=SourceStatut.api, user_id=actor.user_id
    )
    return equipement


async def get_equipement(session: AsyncSession, *, equipement_id: int, principal: Principal) -> Equipement:
    """One equipment; another organisation's is "not found" for a client user."""
    only = principal.organisation()
    equipement = await repo.equipement_by_id(session, equipement_id)
    if equipement is None or (only is not None and equipement.client_id != only):
        raise EquipementIntrouvable(f"No equipment with id {equipement_id}.")
    return equipement


async def _equipement_for_update(session: AsyncSession, equipement_id: int) -> Equipement:
    equipement = await repo.equipement_by_id(session, equipement_id, for_update=True)
    if equipement is None:
        raise EquipementIntrouvable(f"No equipment with id {equipement_id}.")
    return equipement


async def update_equipement(
    session: AsyncSession, *, equipement_id: int, data: EquipementUpdate, actor: Principal
) -> Equipement:
    """Partial update. Field changes publish `updated`; a statut change is recorded in the history
    (with `motif`) and publishes `status_changed` (and `retired` when it becomes `retire`)."""
    equipement = await _equipement_for_update(session, equipement_id)
    sent = _plain(data.model_dump(exclude_unset=True))
    motif = sent.pop("motif", None)
    changes = {k: v for k, v in sent.items() if getattr(equipement, k) != v}
    nouveau_statut = changes.pop("statut", None)
    await _ensure_equipement_free(
        session, nom=changes.get("nom"), numero_serie=changes.get("numero_serie"), except_id=equipement.id
    )
    if changes.get("client_id") is not None:
        await _ensure_active_client(session, changes["client_id"])
    _check_garantie(
        changes.get("date_mise_en_service", equipement.date_mise_en_service),
        changes.get("date_fin_garantie", equipement.date_fin_garantie),
    )
    if changes:
        for key, value in changes.items():
            setattr(equipement, key, value)
        equipement.version += 1
        equipement.date_modification = now()
        await _flush_unique(session)
        await _publish_equipement(session, EquipementUpdated, equipement, changed=sorted(changes))
    if nouveau_statut is not None:
        ancien = equipement.statut
        equipement.statut = nouveau_statut
        equipement.version += 1
        equipement.date_modification = now()
        await session.flush()
        await _record_statut(
            session, equipement, ancien=ancien, motif=motif, source=SourceStatut.api, user_id=actor.user_id
        )
    return equipement


async def delete_equipement(session: AsyncSession, *, equipement_id: int) -> None:
    """Delete for real, only while no intervention references it; `retire` is the normal way out."""
    equipement = await _equipement_for_update(session, equipement_id)
    references = await repo.count_references(session, equipement.id)
    if references:
        raise EquipementReference(
            f"The equipment '{equipement.nom}' cannot be deleted: {references} intervention(s) reference it. "
            "Set its statut to 'retire' to take it out of service.",
            references=references,
        )
    # The deletion is one more change: consumers compare versions to drop stale events.
    equipement.version += 1
    equipement.date_modification = now()
    event = _equipement_event(EquipementDeleted, equipement)
    await session.delete(equipement)
    await session.flush()
    await add_event(session, event, subject=equipement_id)
