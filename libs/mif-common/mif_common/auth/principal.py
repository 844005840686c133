"""Who is calling: user id, role, organisation, and the role hierarchy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mif_common.errors import Forbidden


class Role(StrEnum):
    admin = "admin"
    responsable = "responsable"
    technicien = "technicien"
    client = "client"


# admin may do all that responsable may; the other roles imply nothing else.
ROLE_IMPLIES: dict[Role, frozenset[Role]] = {
    Role.admin: frozenset({Role.admin, Role.responsable}),
    Role.responsable: frozenset({Role.responsable}),
    Role.technicien: frozenset({Role.technicien}),
    Role.client: frozenset({Role.client}),
}

MANAGERS = frozenset({Role.admin, Role.responsable})


def role_allows(role: Role, allowed: frozenset[Role] | set[Role]) -> bool:
    """True when `role` (or a role it implies) is one of `allowed`."""
    return bool(ROLE_IMPLIES[role] & allowed)


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: int
    role: Role
    client_id: int | None = None
    token_version: int = 0
    token_id: str = ""

    @property
    def is_manager(self) -> bool:
        return self.role in MANAGERS

    def has_role(self, *roles: Role) -> bool:
        return role_allows(self.role, set(roles))

    def organisation(self) -> int | None:
        """The only client organisation whose rows this caller may see and act on: a client user's own;
        None for the other roles, which no organisation limits. Another organisation's row is "not
        found" to a client user, so existence does not leak. A client account linked to no organisation
        is refused (403): it has no rows to see."""
        if self.role is not Role.client:
            return None
        if self.client_id is None:
            raise Forbidden("This client account is not linked to an organisation; contact an administrator.")
        return self.client_id
