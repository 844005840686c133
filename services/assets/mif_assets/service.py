"""Business rules of the assets service; the only place that writes outbox events.

Row-level rules live here: managers and technicians see every equipment, a client user only its own
organisation's clients and equipment (anything else is "not found", so existence does not leak).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets import repository as repo
from mif_assets.events import (
    ClientCreated,
    ClientDeactivated,
    ClientEvent,
    ClientUpdated,
    EquipementCreated,
    EquipementDeleted,
    EquipementEvent,
    EquipementRetired,
    EquipementStatusChanged,
    EquipementUpdated,
)
from mif_assets.models import Client, Equipement, EquipementStatutHistorique, SourceStatut, StatutEquipement
from mif_assets.schemas import ClientCreate, ClientUpdate, EquipementCreate, EquipementUpdate, InterventionFact
from mif_common.auth import Principal
from mif_common.datetimes import now
from mif_common.errors import Conflict, NotFound, Unprocessable
from mif_common.events import add_event


class ClientIntrouvable(NotFound):
    slug = "client-not-found"


class EquipementIntrouvable(NotFound):
    slug = "equipement-not-found"


class NomDejaPris(Conflict):
    slug = "name-taken"


class EquipementReference(Conflict):
    slug = "equipement-referenced"


class ClientInvalide(Unprocessable):
    """An equipment pointed at a client organisation that does not exist or is deactivated."""

    slug = "invalid-client"


class DatesIncoherentes(Unprocessable):
    slug = "inconsistent-dates"


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Enum members to their values, for columns and events."""
    return {k: v.value if isinstance(v, StrEnum) else v for k, v in values.items()}


async def _flush_unique(session: AsyncSession) -> None:
    """Flush, turning a lost race on a unique index into the same answer as the pre-checks."""
    try:
        await session.flush()
    except IntegrityError as exc:
        text = str(exc.orig)
        if "uq_client_nom_entreprise_lower" in text:
            raise NomDejaPris("A client organisation with this name already exists.") from exc
        if "uq_equipement_nom_lower" in text:
            raise NomDejaPris("An equipment with this name already exists.") from exc
        if "uq_equipement_numero_serie_lower" in text:
            raise NomDejaPris("An equipment with this serial number already exists.") from exc
        if "fk_equipement_client_id_client" in text:
            raise ClientInvalide("The client organisation does not exist.") from exc
        raise


def _check_after(start: date | None, end: date | None, *, start_field: str, end_field: str, strictly: bool) -> None:
    if start is None or end is None:
        return
    if end < start or (strictly and end == start):
        word = "after" if strictly else "on or after"
        raise DatesIncoherentes(
            f"{end_field} ({end.isoformat()}) must be {word} {start_field} ({start.isoformat()}).",
            errors=[{"field": end_field, "message": f"must be {word} {start_field}"}],
        )


# --- clients ------------------------------------------------------------------------------------


async def _publish_client(session: AsyncSession, event_cls: type[ClientEvent], client: Client, **extra: Any) -> None:
    await add_event(
        session,
        event_cls(
            client_id=client.id,
            nom_entreprise=client.nom_entreprise,
            type_client=client.type_client,
            niveau_service=client.niveau_service,
            is_active=client.is_active,
            ville=client.ville,
            pays=client.pays,
            contrat_debut=client.contrat_debut,
            contrat_fin=client.contrat_fin,
            type_contrat=client.type_contrat,
            version=client.version,
            updated_at=client.date_modification,
            **extra,
        ),
        subject=client.id,
    )


async def _ensure_client_name_free(session: AsyncSession, nom: str, *, except_id: int | None) -> None:
    other = await repo.client_named(session, nom, except_id=except_id)
    if other is not None:
        raise NomDejaPris(
            f"A client organisation named '{other.nom_entreprise}' already exists (id {other.id}); "
            "choose another name.",
            errors=[{"field": "nom_entreprise", "message": "already used by another client organisation"}],
        )


def _check_contract(debut: date | None, fin: date | None) -> None:
    _check_after(debut, fin, start_field="contrat_debut", end_field="contrat_fin", strictly=True)


async def create_client(session: AsyncSession, *, data: ClientCreate) -> Client:
    """A new client organisation, active."""
    values = _plain(data.model_dump())
    _check_contract(values["contrat_debut"], values["contrat_fin"])
    await _ensure_client_name_free(session, values["nom_entreprise"], except_id=None)
    client = Client(**values, is_active=True, version=1)
    session.add(client)
    await _flush_unique(session)
    await session.refresh(client)
    await _publish_client(session, ClientCreated, client)
    return client


async def get_client(session: AsyncSession, *, client_id: int, principal: Principal) -> Client:
    """One organisation; a client user asking for another one gets the same 404 as for a missing one."""
    only = principal.organisation()
    client = None if only is not None and only != client_id else await repo.client_by_id(session, client_id)
    if client is None:
        raise ClientIntrouvable(f"No client organisation with id {client_id}.")
    return client


async def _client_for_update(session: AsyncSession, client_id: int) -> Client:
    client = await repo.client_by_id(session, client_id, for_update=True)
    if client is None:
        raise ClientIntrouvable(f"No client organisation with id {client_id}.")
    return client


async def update_client(session: AsyncSession, *, client_id: int, data: ClientUpdate) -> Client:
    """Partial update; `is_active` false deactivates, true reactivates."""
    client = await _client_for_update(session, client_id)
    sent = _plain(data.model_dump(exclude_unset=True))
    changes = {k: v for k, v in sent.items() if getattr(client, k) != v}
    if "nom_entreprise" in changes:
        await _ensure_client_name_free(session, changes["nom_entreprise"], except_id=client.id)
    _check_contract(changes.get("contrat_debut", client.contrat_debut), changes.get("contrat_fin", client.contrat_fin))
    if not changes:
        return client
    for key, value in changes.items():
        setattr(client, key, value)
    client.version += 1
    client.date_modification = now()
    await _flush_unique(session)
    if changes.get("is_active") is False:
        await _publish_client(session, ClientDeactivated, client)
    else:
        await _publish_client(session, ClientUpdated, client, changed=sorted(changes))
    return client


async def deactivate_client(session: AsyncSession, *, client_id: int) -> None:
    """Soft delete: the organisation stays (its equipment and history refer to it), inactive."""
    client = await _client_for_update(session, client_id)
    if not client.is_active:
        return
    client.is_active = False
    client.version += 1
    client.date_modification = now()
    await session.flush()
    await _publish_client(session, ClientDeactivated, client)


# --- equipements --------------------------------------------------------------------------------


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


# --- reactions to interventions events (DOMAIN.md §4 side effects) ------------------------------


async def _track_intervention(session: AsyncSession, fact: InterventionFact) -> tuple[bool, Equipement | None]:
    """Lock the equipment (serialising every change to its statut), then record the fact in the
    replica. Returns whether the fact is newer than what the replica held, and the equipment."""
    equipement = await repo.equipement_by_id(session, fact.equipement_id, for_update=True)
    return await _record_fact(session, fact), equipement


async def _record_fact(session: AsyncSession, fact: InterventionFact) -> bool:
    return await repo.upsert_intervention_ref(
        session,
        intervention_id=fact.intervention_id,
        equipement_id=fact.equipement_id,
        statut=fact.statut,
        occurred_at=fact.occurred_at,
    )


async def _set_statut_from_event(
    session: AsyncSession,
    equipement: Equipement | None,
    *,
    cible: StatutEquipement,
    motif: str,
    fact: InterventionFact,
    event_id: str,
) -> None:
    # A retired equipment is out of service for good: interventions never bring it back.
    if equipement is None or equipement.statut in (StatutEquipement.retire, cible):
        return
    ancien = equipement.statut
    equipement.statut = cible.value
    equipement.version += 1
    equipement.date_modification = now()
    await session.flush()
    await _record_statut(
        session,
        equipement,
        ancien=ancien,
        motif=motif,
        source=SourceStatut.event,
        user_id=fact.actor_id,
        event_id=event_id,
        intervention_id=fact.intervention_id,
    )


async def intervention_created(session: AsyncSession, *, fact: InterventionFact, event_id: str) -> None:
    """A corrective, urgent intervention puts its equipment `en panne`."""
    fresh, equipement = await _track_intervention(session, fact)
    if fresh and fact.type == "corrective" and (fact.priorite == "urgente" or fact.urgence):
        await _set_statut_from_event(
            session,
            equipement,
            cible=StatutEquipement.panne,
            motif=f"Intervention corrective urgente n°{fact.intervention_id} : {fact.titre}"[:500],
            fact=fact,
            event_id=event_id,
        )


async def intervention_work_started(session: AsyncSession, *, fact: InterventionFact, event_id: str, verb: str) -> None:
    """Work in progress (started or resumed) puts the equipment `en maintenance`."""
    fresh, equipement = await _track_intervention(session, fact)
    if fresh:
        action = "reprise" if verb == "resumed" else "démarrée"
        await _set_statut_from_event(
            session,
            equipement,
            cible=StatutEquipement.maintenance,
            motif=f"Intervention n°{fact.intervention_id} {action}",
            fact=fact,
            event_id=event_id,
        )


_ENDED = {"closed": "clôturée", "cancelled": "annulée", "archived": "archivée"}


async def intervention_ended(session: AsyncSession, *, fact: InterventionFact, event_id: str, verb: str) -> None:
    """Closing (cancelling, archiving) the last open intervention makes the equipment `operationnel`."""
    fresh, equipement = await _track_intervention(session, fact)
    if not fresh or equipement is None or await repo.has_open_interventions(session, equipement.id):
        return
    await _set_statut_from_event(
        session,
        equipement,
        cible=StatutEquipement.operationnel,
        motif=f"Intervention n°{fact.intervention_id} {_ENDED.get(verb, verb)} ; plus aucune intervention ouverte",
        fact=fact,
        event_id=event_id,
    )


# Facts that keep an intervention open and on its equipment: nothing about the equipment can change.
_STILL_OPEN_HERE = frozenset({"assigned", "unassigned", "paused", "late"})


async def intervention_changed(session: AsyncSession, *, fact: InterventionFact, verb: str) -> None:
    """Other facts (assigned, paused, late, ...) only keep the replica current. Those that cannot change
    whether the equipment has open interventions skip its lock (an `updated` may move the intervention
    to another equipment, so it takes it)."""
    if verb in _STILL_OPEN_HERE:
        await _record_fact(session, fact)
    else:
        await _track_intervention(session, fact)
