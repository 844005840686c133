"""FastAPI dependencies: the caller's `Principal` and role requirements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from mif_common.auth.principal import Principal, Role, role_allows
from mif_common.auth.tokens import TokenVerifier, bearer_token
from mif_common.errors import Forbidden, Unauthorized


async def current_principal(request: Request) -> Principal:
    """Verify the bearer token again (services never trust the gateway alone)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized()
    verifier: TokenVerifier = request.app.state.token_verifier
    principal = await verifier.principal(token)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency allowing only `roles` (admin is implied wherever responsable is allowed)."""
    allowed = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if not role_allows(principal.role, allowed):
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"This action needs one of these roles: {names}.")
        return principal

    return check


Manager = Annotated[Principal, Depends(require_roles(Role.responsable))]
Admin = Annotated[Principal, Depends(require_roles(Role.admin))]
