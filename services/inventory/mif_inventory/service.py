"""What the inventory service's concept modules share: refusals, quantities, and which intervention the
caller may see or use parts on.

The rules live in one module per concept (the only places that write outbox events; they flush, never
commit): `pieces` (the catalogue), `emplacements` (locations), `stock` (movements and the low-stock
alert), `interventions_pieces` (reserve, consume, return, release on an intervention) and `replicas`
(other services' facts and their side effects).

Row-level rules: managers see and do everything; a technician reads the catalogue and the stock and
uses parts only on interventions assigned to them; a client user sees the parts used on its own
organisation's interventions and nothing else (anything else is "not found": existence does not leak).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal, Role
from mif_common.errors import Conflict, Forbidden, NotFound, Unprocessable
from mif_common.intervention_scope import scope_of, sees
from mif_inventory import replicas_repository as replicas_repo
from mif_inventory.models import InterventionRef
from mif_inventory.owners import InterventionAnswer, InterventionsClient

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PieceIntrouvable(NotFound):
    slug = "piece-not-found"


class EmplacementIntrouvable(NotFound):
    slug = "emplacement-not-found"


class InterventionIntrouvable(NotFound):
    slug = "intervention-not-found"


class ReferenceDejaPrise(Conflict):
    slug = "reference-taken"


class StockInsuffisant(Conflict):
    """A movement would make a location's stock (or what is available of it) negative."""

    slug = "insufficient-stock"


class QuantiteInvalide(Conflict):
    """More returned or released than the intervention consumed or reserved."""

    slug = "invalid-quantity"


class InterventionFermee(Conflict):
    slug = "intervention-not-open-for-parts"


class EmplacementOccupe(Conflict):
    slug = "emplacement-holds-stock"


class ReferenceInvalide(Unprocessable):
    slug = "invalid-reference"


class CleIdempotenceReutilisee(Unprocessable):
    slug = "idempotency-key-reused"


def fmt(quantite: Decimal) -> str:
    """A quantity as people write it: `10`, `2.5`."""
    return format(quantite.normalize(), "f")


def cout_de(quantite: Decimal, prix_unitaire: int) -> int:
    """Quantity × unit price in centimes, rounded half up to the centime."""
    return int((quantite * prix_unitaire).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def intervention_not_visible(intervention_id: int) -> InterventionIntrouvable:
    return InterventionIntrouvable(f"No intervention {intervention_id} that you may see.")


@dataclass(frozen=True, slots=True)
class VisibleIntervention:
    intervention_id: int
    client_id: int | None
    technicien_id: int | None
    statut: str


async def remember_intervention(session: AsyncSession, answer: InterventionAnswer) -> None:
    """Cache what interventions answered (an event with a later timestamp still wins)."""
    await replicas_repo.upsert_intervention_ref(
        session,
        intervention_id=answer.id,
        equipement_id=answer.equipement_id,
        client_id=answer.client_id,
        technicien_id=answer.technicien_id,
        statut=answer.statut,
        occurred_at=answer.date_modification or _EPOCH,
    )


async def _ask_owner(
    session: AsyncSession, *, intervention_id: int, interventions: InterventionsClient
) -> VisibleIntervention:
    answer = await interventions.answer(intervention_id)
    if answer is None:
        raise intervention_not_visible(intervention_id)
    await remember_intervention(session, answer)
    # Interventions applied the caller's rules: it is visible, whatever the replica may lag behind.
    return VisibleIntervention(answer.id, answer.client_id, answer.technicien_id, answer.statut)


def _of(ref: InterventionRef) -> VisibleIntervention:
    return VisibleIntervention(ref.intervention_id, ref.client_id, ref.technicien_id, ref.statut)


async def visible_intervention(
    session: AsyncSession, *, intervention_id: int, principal: Principal, interventions: InterventionsClient
) -> VisibleIntervention:
    """The intervention if the caller may see it (a technician: assigned to them), else 404."""
    ref = await replicas_repo.intervention_ref(session, intervention_id)
    if ref is None:
        return await _ask_owner(session, intervention_id=intervention_id, interventions=interventions)
    seen = await sees(
        scope_of(principal), ref, lambda technicien_id: replicas_repo.technicien_user_id(session, technicien_id)
    )
    if seen is None:  # planning has not told us who that technician is yet: the owner decides
        return await _ask_owner(session, intervention_id=intervention_id, interventions=interventions)
    if seen:
        return _of(ref)
    raise intervention_not_visible(intervention_id)


async def usable_intervention(
    session: AsyncSession, *, intervention_id: int, principal: Principal, interventions: InterventionsClient
) -> VisibleIntervention:
    """The intervention if the caller may move parts on it: a manager, or its assigned technician."""
    if principal.role is Role.client:
        raise Forbidden("Client users see the parts used on their interventions; they do not move parts.")
    return await visible_intervention(
        session, intervention_id=intervention_id, principal=principal, interventions=interventions
    )
