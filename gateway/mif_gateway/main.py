"""App factory of the gateway: `uvicorn --factory mif_gateway.main:create_app --port 8000`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware

from mif_common.app import INTERNAL_HTTP_LIMITS
from mif_common.auth.token_state import TokenStateFollower, TokenStates, auth_lookup
from mif_common.auth.tokens import JwksClient, TokenVerifier
from mif_common.docs_assets import mount_swagger_assets
from mif_common.errors import install_error_handlers, problem_response
from mif_common.events.broker import Broker
from mif_common.guard import add_request_guards
from mif_common.health import live  # the services' own: no I/O, and which build answers
from mif_common.logging import configure_logging
from mif_common.metrics import MetricsMiddleware, metrics_endpoint
from mif_common.request_context import RequestIdMiddleware, StripTrailingSlashMiddleware
from mif_common.version import build_info
from mif_gateway.config import GatewaySettings
from mif_gateway.docs import OpenApiAggregator
from mif_gateway.docs import router as docs_router
from mif_gateway.events_docs import EventCatalogue
from mif_gateway.events_docs import router as events_docs_router
from mif_gateway.jwt_check import TokenChecker
from mif_gateway.policy import DEFAULT_POLICY
from mif_gateway.proxy import ApiFastPath, Gateway
from mif_gateway.ratelimit import RateLimits
from mif_gateway.upstream import make_upstream_client

logger = logging.getLogger(__name__)

EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-Total-Count",
    "Link",
    "ETag",
    "Retry-After",
    "Content-Disposition",
    "Location",
    "X-MIF-Version",
]


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    upstream_urls = settings.upstream_urls()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("gateway", level=settings.log_level, json=settings.log_json)
        app.state.settings = settings
        # Control plane (JWKS, token states, readiness, OpenAPI documents): small, rare requests.
        control = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.control_timeout),
            limits=INTERNAL_HTTP_LIMITS,
            headers={"user-agent": "mif-gateway"},
            trust_env=False,
        )
        jwks = JwksClient(settings.jwks_url, control)
        verifier = TokenVerifier(
            jwks,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=settings.jwt_algorithms,
            leeway=settings.jwt_leeway_seconds,
        )
        # The same token-state check as every service's (mif_common.auth.token_state); None when disabled.
        states = (
            TokenStates(lookup=auth_lookup(control, upstream_urls["auth"])) if settings.revocation_enabled else None
        )
        upstream = make_upstream_client(settings)
        app.state.control_http = control
        app.state.token_states = states
        app.state.gateway = Gateway(
            settings=settings,
            policy=DEFAULT_POLICY,
            tokens=TokenChecker(
                verifier, states, cache_seconds=settings.token_cache_seconds, cache_size=settings.token_cache_size
            ),
            limits=RateLimits.from_settings(settings),
            upstream=upstream,
            upstream_urls=upstream_urls,
        )
        app.state.openapi = OpenApiAggregator(
            http=control,
            upstream_urls=upstream_urls,
            policy=DEFAULT_POLICY,
            ttl=settings.openapi_cache_seconds,
            timeout=settings.control_timeout,
        )
        broker = Broker(settings.amqp_url, name="mif-gateway")
        app.state.broker = broker
        app.state.revocation = None
        # Fetch the keys now rather than on the first request (a miss is retried on demand anyway).
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(_warm_up(jwks), name="gateway-jwks-warm-up")]
        if states is not None:
            follower = TokenStateFollower(
                states,
                broker=broker,
                http=control,
                auth_url=upstream_urls["auth"],
                process="gateway",
                retry_seconds=settings.token_states_retry_seconds,
            )
            app.state.revocation = follower
            broker.start()
            tasks.append(asyncio.create_task(_supervised(follower.run), name="gateway-revocation"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if app.state.revocation is not None:
                await app.state.revocation.close()
            await broker.close()
            await upstream.aclose()
            await control.aclose()

    app = FastAPI(
        title="MIF API gateway",
        description="Single entry point of the MIF maintenance suite.",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.build = build_info("gateway")
    install_error_handlers(app)
    # Set here, not in the lifespan: it needs no I/O until the first request.
    app.state.event_catalogue = EventCatalogue(settings.asyncapi_path)
    app.include_router(docs_router)
    mount_swagger_assets(app)  # /docs/static: for /docs and for every service's docs relayed through us
    app.include_router(events_docs_router)
    app.add_api_route("/health/live", live, methods=["GET"], include_in_schema=False)
    app.add_api_route("/health/ready", ready, methods=["GET"], include_in_schema=False)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    # Outermost last: trailing slash, request id, CORS, metrics, body timeout and guard (mif_common.guard),
    # then /api/* straight to the proxy.
    app.add_middleware(ApiFastPath)
    add_request_guards(app, settings, max_body_bytes=settings.max_buffered_body_bytes)
    app.add_middleware(MetricsMiddleware, service="gateway")
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    app.add_middleware(RequestIdMiddleware, version=app.state.build.header)
    app.add_middleware(StripTrailingSlashMiddleware)
    return app


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with refused preflights answered as problem+json like every error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        keep = {k: v for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")}
        return problem_response(
            400, f"This cross-origin request is not allowed (refused: {refused}).", slug="cors-refused", headers=keep
        )


async def ready(request: Request) -> JSONResponse:
    """Each upstream's own readiness and the revocation feed. The gateway answers 200 even when some
    services are down (it still serves the others and answers 503 for those), so an orchestrator
    never takes every replica out because one service is unhealthy."""
    state = request.app.state
    settings: GatewaySettings = state.settings
    control: httpx.AsyncClient = state.control_http
    urls = settings.upstream_urls()

    async def check(name: str) -> str:
        try:
            response = await control.get(f"{urls[name]}/health/ready", timeout=min(settings.control_timeout, 2.0))
        except httpx.HTTPError as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok" if response.status_code == 200 else f"not ready: HTTP {response.status_code}"

    names = list(urls)
    results = await asyncio.gather(*(check(n) for n in names))
    upstreams = dict(zip(names, results, strict=True))
    follower: TokenStateFollower | None = state.revocation
    revocation: dict[str, Any] = {"enabled": follower is not None}
    if follower is not None:
        revocation.update(
            snapshot_loaded=state.token_states.snapshot_loaded,
            events_subscribed=follower.subscribed.is_set(),
            broker_connected=state.broker.is_connected,
            known_users=len(state.token_states.users),
        )
    degraded = any(v != "ok" for v in upstreams.values()) or (
        follower is not None and not (revocation["snapshot_loaded"] and revocation["broker_connected"])
    )
    return JSONResponse({"status": "degraded" if degraded else "ok", "upstreams": upstreams, "revocation": revocation})


async def _warm_up(jwks: JwksClient) -> None:
    await jwks.get("")


async def _supervised(job: Any) -> None:
    """Run a background job to completion, restarting it after an unexpected error."""
    while True:
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background job %s failed; restarting in 2s", getattr(job, "__name__", job))
            await asyncio.sleep(2)
