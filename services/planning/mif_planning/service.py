"""What the planning service's concept modules share: their refusals and the clock.

The business rules live in one module per concept (the only places that write outbox events; they
flush, never commit): `techniciens` (profiles, their competences, availability, calendar feeds,
recommendation), `competences` (the catalogue), `plans` (preventive plans and their history),
`occurrences` (the scheduler's steps), `checklists` (checklist templates), `owners` (asking auth and
assets on a replica miss) and `replicas` (other services' facts: users, equipment, interventions).

Row-level rules live in those modules: managers see and manage every technician and plan; a technician
sees its own profile (any other is "not found"), may change only its own `disponibilite`, and sees the
plans it is the default assignee of. Client users are refused before reaching them (403).
"""

from __future__ import annotations

from datetime import UTC, datetime

from mif_common.auth import Principal, Role
from mif_common.errors import BadRequest, Conflict, Forbidden, NotFound, ServiceUnavailable, Unprocessable


class TechnicienIntrouvable(NotFound):
    slug = "technicien-not-found"


class CompetenceIntrouvable(NotFound):
    slug = "competence-not-found"


class PlanIntrouvable(NotFound):
    slug = "planning-not-found"


class ChecklistIntrouvable(NotFound):
    slug = "checklist-not-found"


class ChecklistUtilisee(Conflict):
    slug = "checklist-in-use"


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


def is_technicien(principal: Principal) -> bool:
    return principal.role is Role.technicien
