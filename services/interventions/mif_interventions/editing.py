"""Editing an intervention's fields (a technician: only the fields of its report)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.datetimes import now
from mif_interventions.config import InterventionsSettings
from mif_interventions.events import InterventionUpdated
from mif_interventions.models import CLOSED_STATUTS, ActionHistorique, Intervention, Priorite
from mif_interventions.owners import AssetsEquipements, _equipement_pour
from mif_interventions.schemas import InterventionUpdate
from mif_interventions.service import (
    ActionNonAutorisee,
    Auteur,
    DonneesIncoherentes,
    InterventionFigee,
    _historiser,
    _json,
    _pour_ecrire,
    _publier,
    sla_deadline,
)

# What an assigned technician may edit; managers edit every field of InterventionUpdate.
TECHNICIEN_EDITABLE = frozenset({"description", "rapport", "duree_estimee", "duree_reelle", "cout_reel"})


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
