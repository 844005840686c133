"""App factory of the auth service: `uvicorn --factory mif_auth.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from mif_auth.api import auth_router, users_router
from mif_auth.config import AuthSettings
from mif_auth.handlers import HANDLERS
from mif_auth.keys import KeyRing
from mif_auth.owners import AssetsOrganisations
from mif_auth.passwords import prepare_hashing
from mif_common.app import ServiceParts, create_service_app
from mif_common.auth.tokens import StaticKeys, TokenVerifier


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()

    async def load_keys(app: FastAPI) -> None:
        # auth verifies its own tokens from its key ring, not over HTTP from itself.
        app.state.keyring = KeyRing.from_settings(settings)
        app.state.token_verifier = TokenVerifier(
            StaticKeys(app.state.keyring.jwks),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=settings.jwt_algorithms,
            leeway=settings.jwt_leeway_seconds,
        )

    async def warm_hashing(_app: FastAPI) -> None:
        # The dummy hash an unknown account is checked against, made once before the first sign-in.
        await prepare_hashing(settings.password_hashing)

    return create_service_app(
        settings,
        ServiceParts(
            title="MIF auth service",
            description=(
                "Users, credentials, access and refresh tokens, JWKS. Publishes `auth.user.*.v1`; consumes "
                "`assets.client.*.v1` (the client organisations a client user may belong to)."
            ),
            routers=[auth_router, users_router],
            handlers=HANDLERS,
            on_startup=[load_keys, warm_hashing],
            # auth checks every authenticated request against its own database (api.current_user):
            # it follows no token states of its own.
            token_states=False,
            owners=[AssetsOrganisations],
        ),
    )
