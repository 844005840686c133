"""Authentication and authorisation shared by the services and the gateway."""

from mif_common.auth.deps import Admin, CurrentPrincipal, Manager, current_principal, require_roles
from mif_common.auth.principal import MANAGERS, Principal, Role, role_allows

__all__ = [
    "MANAGERS",
    "Admin",
    "CurrentPrincipal",
    "Manager",
    "Principal",
    "Role",
    "current_principal",
    "require_roles",
    "role_allows",
]
