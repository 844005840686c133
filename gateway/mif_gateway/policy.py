"""THE policy table: who may call what through the gateway.

One row per (method, path pattern). Patterns are matched against the normalised path (no trailing
slash); `{id}` is an integer segment, `{token}` any single segment. A literal segment always wins
over a placeholder (`/techniciens/competences` is never captured by `/techniciens/{id}`). A path
absent from this table is not routed (404), and `INTERNAL` rows are never routed either: they exist
so the table documents them and so nobody adds them by accident. Admin may do all that responsable
may (`role_allows`). The owning service checks the token again and applies row-level rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from mif_common.auth.principal import Role, role_allows
from mif_common.suite import ALL_SERVICES


class AccessKind(StrEnum):
    public = "public"
    authenticated = "authenticated"
    roles = "roles"
    internal = "internal"


@dataclass(frozen=True, slots=True)
class Access:
    kind: AccessKind
    roles: frozenset[Role] = frozenset()

    def allows(self, role: Role) -> bool:
        """Whether an authenticated caller with `role` passes (only meaningful for non-public rows)."""
        if self.kind is AccessKind.authenticated:
            return True
        if self.kind is AccessKind.roles:
            return role_allows(role, self.roles)
        return False

    def describe(self) -> str:
        if self.kind is AccessKind.roles:
            implied = {r for r in Role if role_allows(r, self.roles)}
            return "roles: " + ", ".join(sorted(implied))
        return self.kind.value


PUBLIC = Access(AccessKind.public)
AUTHENTICATED = Access(AccessKind.authenticated)
INTERNAL = Access(AccessKind.internal)


def roles(*allowed: Role) -> Access:
    return Access(AccessKind.roles, frozenset(allowed))


R, T, C, A = Role.responsable, Role.technicien, Role.client, Role.admin
ANY_ROLE = roles(R, T, C)  # every role (admin through responsable)

_INT = "{id}"
_PLACEHOLDERS = frozenset({_INT, "{token}"})


@dataclass(frozen=True, slots=True)
class Rule:
    method: str
    path: str
    access: Access
    # Login endpoints: limited per client IP and per account (the username/e-mail form field).
    login: bool = False
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)
    placeholders: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        segments = tuple(self.path.split("/"))
        object.__setattr__(self, "segments", segments)
        object.__setattr__(self, "placeholders", sum(s in _PLACEHOLDERS for s in segments))

    def matches(self, segments: list[str]) -> bool:
        if len(segments) != len(self.segments):
            return False
        for pattern, seg in zip(self.segments, segments, strict=True):
            if pattern == _INT:
                if not (seg.isascii() and seg.isdigit() and len(seg) <= 18):
                    return False
            elif pattern == "{token}":
                if not seg:
                    return False
            elif pattern != seg:
                return False
        return True

    def example_path(self) -> str:
        """A concrete path this row matches (tests walk the table with it)."""
        return self.path.replace(_INT, "42").replace("{token}", "tok-abc123")


def _rows(method: str, paths: Iterable[str], access: Access, *, login: bool = False) -> Iterator[Rule]:
    for path in paths:
        yield Rule(method, "/api/v1" + path, access, login=login)


INTERVENTION_ACTIONS = (
    "affecter",
    "desaffecter",
    "demarrer",
    "suspendre",
    "reprendre",
    "cloturer",
    "annuler",
    "archiver",
    "commentaires",
)

POLICY: tuple[Rule, ...] = (
    # auth
    *_rows("POST", ["/auth/login", "/auth/token"], PUBLIC, login=True),
    *_rows("POST", ["/auth/refresh", "/auth/logout"], PUBLIC),
    *_rows("GET", ["/auth/.well-known/jwks.json"], PUBLIC),
    *_rows("GET", ["/auth/me"], AUTHENTICATED),
    *_rows("POST", ["/auth/change-password"], AUTHENTICATED),
    *_rows("GET", ["/auth/internal/token-states", "/auth/internal/token-states/{id}"], INTERNAL),
    # users
    *_rows("GET", ["/users"], roles(R)),
    # Anyone signed in: auth answers managers, or the caller's own account (403 for anyone else's).
    *_rows("GET", ["/users/{id}"], AUTHENTICATED),
    *_rows("POST", ["/users"], roles(A)),
    *_rows("PUT", ["/users/{id}"], roles(A)),
    *_rows("DELETE", ["/users/{id}"], roles(A)),
    *_rows("PATCH", ["/users/{id}/activate"], roles(A)),
    *_rows("POST", ["/users/{id}/unlock"], roles(A)),
    *_rows("GET", ["/users/me"], AUTHENTICATED),
    *_rows("PUT", ["/users/update"], AUTHENTICATED),
    # clients
    *_rows("GET", ["/clients", "/clients/{id}"], roles(R, C)),
    *_rows("POST", ["/clients"], roles(R)),
    *_rows("PUT", ["/clients/{id}"], roles(R)),
    *_rows("DELETE", ["/clients/{id}"], roles(R)),
    # equipements
    *_rows("GET", ["/equipements", "/equipements/{id}", "/equipements/{id}/historique-statut"], ANY_ROLE),
    *_rows("POST", ["/equipements"], roles(R)),
    *_rows("PUT", ["/equipements/{id}"], roles(R)),
    *_rows("DELETE", ["/equipements/{id}"], roles(R)),
    # meters and readings (a client user reads its organisation's; sensors post through an R or T account)
    *_rows(
        "GET",
        ["/equipements/{id}/compteurs", "/equipements/{id}/compteurs/{id}", "/equipements/{id}/compteurs/{id}/releves"],
        ANY_ROLE,
    ),
    *_rows("POST", ["/equipements/{id}/compteurs"], roles(R)),
    *_rows("PUT", ["/equipements/{id}/compteurs/{id}"], roles(R)),
    *_rows("DELETE", ["/equipements/{id}/compteurs/{id}"], roles(R)),
    *_rows("POST", ["/equipements/{id}/compteurs/{id}/releves"], roles(R, T)),
    # interventions
    *_rows(
        "GET",
        [
            "/interventions",
            "/interventions/{id}",
            "/interventions/{id}/historique",
            "/interventions/{id}/commentaires",
            "/interventions/{id}/checklist",
        ],
        ANY_ROLE,
    ),
    # checklists: a manager adds a template; the assigned technician (or a manager) fills a step
    *_rows("POST", ["/interventions/{id}/checklist"], roles(R)),
    *_rows("PUT", ["/interventions/{id}/checklist/etapes/{id}"], roles(R, T)),
    *_rows("POST", ["/interventions"], roles(R, C)),
    *_rows("PATCH", ["/interventions/{id}"], roles(R, T)),
    *_rows("PATCH", ["/interventions/{id}/statut"], roles(R, T, C)),
    *_rows("POST", [f"/interventions/{{id}}/{action}" for action in INTERVENTION_ACTIONS], roles(R, T, C)),
    *_rows("GET", ["/filters/interventions"], ANY_ROLE),
    *_rows("GET", ["/dashboard/stats", "/dashboard/kpis"], ANY_ROLE),
    # techniciens
    *_rows("GET", ["/techniciens", "/techniciens/{id}", "/techniciens/me"], roles(R, T)),
    *_rows("POST", ["/techniciens"], roles(R)),
    *_rows("PUT", ["/techniciens/{id}"], roles(R, T)),
    *_rows("DELETE", ["/techniciens/{id}"], roles(R)),
    *_rows("GET", ["/techniciens/competences", "/techniciens/competences/{id}"], roles(R, T)),
    *_rows("POST", ["/techniciens/competences"], roles(R)),
    *_rows("PUT", ["/techniciens/competences/{id}"], roles(R)),
    *_rows("DELETE", ["/techniciens/competences/{id}"], roles(R)),
    *_rows("GET", ["/techniciens/recommandation"], roles(R)),
    # a technician's calendar feed URL (the service lets a technician reach only its own)
    *_rows("GET", ["/techniciens/{id}/ical-token"], roles(R, T)),
    *_rows("POST", ["/techniciens/{id}/ical-token"], roles(R, T)),
    *_rows("DELETE", ["/techniciens/{id}/ical-token"], roles(R, T)),
    # planning
    *_rows("GET", ["/planning", "/planning/{id}", "/planning/calendrier", "/planning/{id}/historique"], roles(R, T)),
    *_rows("POST", ["/planning"], roles(R)),
    *_rows("PUT", ["/planning/{id}"], roles(R)),
    *_rows("DELETE", ["/planning/{id}"], roles(R)),
    *_rows("PATCH", ["/planning/{id}/dates"], roles(R)),
    *_rows("GET", ["/planning/ical/{token}"], PUBLIC),  # the secret is in the URL
    # checklist templates (planning): managers write, technicians read
    *_rows("GET", ["/planning/checklists", "/planning/checklists/{id}"], roles(R, T)),
    *_rows("POST", ["/planning/checklists"], roles(R)),
    *_rows("PUT", ["/planning/checklists/{id}"], roles(R)),
    *_rows("DELETE", ["/planning/checklists/{id}"], roles(R)),
    # documents
    # `/documents/{id}` lists one intervention's documents (contract); one document's metadata is
    # `/documents/fichier/{id}`; DELETE and download take a document id.
    *_rows("GET", ["/documents", "/documents/{id}", "/documents/fichier/{id}"], ANY_ROLE),
    *_rows("POST", ["/documents"], ANY_ROLE),
    *_rows("DELETE", ["/documents/{id}"], ANY_ROLE),
    *_rows("GET", ["/documents/{id}/download"], PUBLIC),  # signed URL: the service checks its token
    # inventory: managers run the catalogue, locations and stock; technicians read them and move parts on
    # their own interventions (the service checks which); a client user sees only the parts used on its
    # organisation's interventions.
    *_rows(
        "GET",
        [
            "/pieces",
            "/pieces/{id}",
            "/pieces/{id}/stock",
            "/stock",
            "/stock/emplacements",
            "/stock/emplacements/{id}",
            "/stock/mouvements",
        ],
        roles(R, T),
    ),
    *_rows("GET", ["/pieces/a-commander"], roles(R)),
    *_rows("POST", ["/pieces", "/stock/emplacements", "/stock/mouvements"], roles(R)),
    *_rows("PUT", ["/pieces/{id}", "/stock/emplacements/{id}"], roles(R)),
    *_rows("DELETE", ["/pieces/{id}", "/stock/emplacements/{id}"], roles(R)),
    *_rows("GET", ["/stock/interventions/{id}/pieces"], ANY_ROLE),
    *_rows(
        "POST",
        [
            "/stock/interventions/{id}/reservations",
            "/stock/interventions/{id}/consommations",
            "/stock/interventions/{id}/retours",
            "/stock/interventions/{id}/liberations",
        ],
        roles(R, T),
    ),
    # reports: every role reads the KPIs and runs exports; the service applies the row-level scoping itself
    # (what each caller may count and export).
    *_rows(
        "GET",
        [
            "/kpis",
            "/kpis/mttr",
            "/kpis/mtbf",
            "/kpis/disponibilite",
            "/kpis/backlog",
            "/kpis/conformite-preventive",
            "/kpis/sla",
            "/kpis/premiere-resolution",
            "/kpis/utilisation",
            "/kpis/couts",
        ],
        ANY_ROLE,
    ),
    *_rows("POST", ["/rapports/exports"], ANY_ROLE),
    *_rows("GET", ["/rapports/jobs", "/rapports/jobs/{id}"], ANY_ROLE),
    *_rows("DELETE", ["/rapports/jobs/{id}"], ANY_ROLE),
    *_rows("GET", ["/rapports/fichiers/{token}"], PUBLIC),  # signed, expiring link: the service checks it
    # notifications
    *_rows(
        "GET",
        [
            "/notifications",
            "/notifications/{id}",
            "/notifications/user/me",
            "/notifications/unread-count",
            "/notifications/stream",
            "/notifications/preferences",
        ],
        ANY_ROLE,
    ),
    *_rows("PUT", ["/notifications/{id}/read", "/notifications/read-all", "/notifications/preferences"], ANY_ROLE),
    *_rows("DELETE", ["/notifications/{id}"], ANY_ROLE),
    *_rows("POST", ["/notifications"], roles(R)),
    # each service's own OpenAPI document and Swagger UI
    *(
        rule
        for svc in ALL_SERVICES
        for rule in _rows("GET", [f"/{svc.name}/openapi.json", f"/{svc.name}/docs"], PUBLIC)
    ),
)


class Policy:
    """Index over the rules: exact paths by dict, patterns by (method, segment count)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._exact: dict[tuple[str, str], Rule] = {}
        self._patterns: dict[tuple[str, int], list[Rule]] = {}
        seen: set[tuple[str, str]] = set()
        for rule in self.rules:
            key = (rule.method, rule.path)
            if key in seen:
                raise ValueError(f"duplicate policy row {rule.method} {rule.path}")
            seen.add(key)
            if rule.placeholders:
                self._patterns.setdefault((rule.method, len(rule.segments)), []).append(rule)
            else:
                self._exact[key] = rule
        for bucket in self._patterns.values():
            bucket.sort(key=lambda r: r.placeholders)

    def match(self, method: str, path: str) -> Rule | None:
        """The row for `method path` (HEAD follows GET), or None."""
        if method == "HEAD":
            method = "GET"
        rule = self._exact.get((method, path))
        if rule is not None:
            return rule
        segments = path.split("/")
        for candidate in self._patterns.get((method, len(segments)), ()):
            if candidate.matches(segments):
                return candidate
        return None

    def allowed_methods(self, path: str) -> list[str]:
        """Methods routed for `path` (internal rows excluded), for 405 answers."""
        segments = path.split("/")
        methods = {
            r.method
            for r in self.rules
            if r.access.kind is not AccessKind.internal and (r.path == path or (r.placeholders and r.matches(segments)))
        }
        return sorted(methods)


DEFAULT_POLICY = Policy(POLICY)
