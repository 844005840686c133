"""What the assets service's concept modules share: refusals, the clock, who sees which organisation,
and the checks every write makes.

The rules live in one module per concept (the only places that write outbox events; they flush, never
commit): `clients`, `equipements`, and `replicas` (interventions' facts and their side effects on an
equipment's statut).

Row-level rules live there: managers and technicians see every equipment, a client user only its own
organisation's clients and equipment (anything else is "not found", so existence does not leak).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.errors import Conflict, NotFound, Unprocessable


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
