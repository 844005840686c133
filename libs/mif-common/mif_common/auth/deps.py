"""FastAPI dependencies: the caller's `Principal` and role requirements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mif_common.auth.principal import Principal, Role, role_allows
from mif_common.auth.token_state import TokenStates
from mif_common.auth.tokens import TokenVerifier, bearer_token
from mif_common.errors import Forbidden, Unauthorized

# Documents the bearer token in OpenAPI: every operation that needs a principal lists `security: bearerAuth`
# (mif_common.openapi adds its 401 and 403). It never refuses anything itself: the token is read below.
BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="An access token from `POST /api/v1/auth/login` (15 minutes; `POST /api/v1/auth/refresh` renews it).",
    auto_error=False,
)


async def current_principal(
    request: Request, _documented: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None
) -> Principal:
    """Verify the bearer token again and check its user's token state (services never trust the gateway
    alone): a deactivated user, a user of a deactivated organisation, a token older than the user's
    current version or a user auth does not know is refused here too (mif_common.auth.token_state)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized()
    state = request.app.state
    verifier: TokenVerifier = state.token_verifier
    principal = await verifier.principal(token)
    # None only where the service checks its own database instead (auth) or where it is switched off.
    states: TokenStates | None = getattr(state, "token_states", None)
    if states is not None:
        await states.check(principal)
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
