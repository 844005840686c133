"""`create_service_app`: the one way a service's FastAPI app is assembled.

Everything with I/O (engine, HTTP client, broker, relay, consumers) is built in the lifespan and kept
on `app.state`, so tests can swap any of it without touching globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.auth.token_state import TokenStateFollower, TokenStates, auth_lookup
from mif_common.auth.tokens import JwksClient, TokenVerifier
from mif_common.config import ServiceSettings
from mif_common.db import make_sessionmaker, service_engine
from mif_common.docs_assets import install_offline_docs
from mif_common.errors import install_error_handlers
from mif_common.events.broker import Broker
from mif_common.events.consumer import EventConsumer, Handler
from mif_common.events.relay import OutboxRelay
from mif_common.events.topology import consumer_queue_name
from mif_common.guard import add_request_guards
from mif_common.health import router as health_router
from mif_common.jobs import PeriodicJob
from mif_common.logging import configure_logging
from mif_common.metrics import MetricsMiddleware, metrics_endpoint
from mif_common.openapi import install_problem_docs
from mif_common.owners import OwnerClient
from mif_common.request_context import BodySizeLimitMiddleware, RequestIdMiddleware, StripTrailingSlashMiddleware
from mif_common.version import build_info

logger = logging.getLogger(__name__)

# Between our processes, an idle connection is dropped after 2 s: uvicorn closes its own after 5, and a
# request sent on one it is closing fails with "Server disconnected without sending a response" (seen on
# a JWKS fetch in CI: every token was then answered 503 for a second).
INTERNAL_HTTP_LIMITS = httpx.Limits(keepalive_expiry=2.0)

Hook = Callable[[FastAPI], Awaitable[None]]
BackgroundJob = Callable[[FastAPI], Awaitable[None]]


@dataclass(slots=True)
class ServiceParts:
    """What a service contributes to its app; the rest is the same for every service."""

    title: str
    description: str
    routers: Sequence[APIRouter]
    version: str = "1.0.0"
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    on_startup: Sequence[Hook] = ()
    # Loops of their own (a LISTEN hub, a sender woken by it); periodic passes go in `periodic_jobs`.
    background_jobs: Sequence[BackgroundJob] = ()
    periodic_jobs: Sequence[PeriodicJob] = ()
    openapi_tags: list[dict[str, str]] | None = None
    # The clients of the services this one asks on a replica miss (`OwnerClient.for_request`).
    owners: Sequence[type[OwnerClient]] = ()
    # Check every authenticated request against the token states (auth alone checks its own database).
    token_states: bool = True


def create_service_app(settings: ServiceSettings, parts: ServiceParts) -> FastAPI:
    name = settings.service_name
    prefix = f"/api/v1/{name}"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(name, level=settings.log_level, json=settings.log_json)
        app.state.settings = settings
        app.state.engine = service_engine(settings)
        app.state.sessionmaker = make_sessionmaker(app.state.engine, source=name, settings=settings)
        app.state.http = httpx.AsyncClient(
            timeout=httpx.Timeout(5.0), limits=INTERNAL_HTTP_LIMITS, headers={"user-agent": f"mif-{name}"}
        )
        app.state.token_verifier = TokenVerifier(
            JwksClient(settings.jwks_url, app.state.http),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            algorithms=settings.jwt_algorithms,
            leeway=settings.jwt_leeway_seconds,
        )
        app.state.broker = Broker(settings.amqp_url, name=f"mif-{name}")
        app.state.consumer = None
        app.state.token_states = app.state.token_state_follower = None
        app.state.owners = {owner: owner(app.state) for owner in parts.owners}
        if parts.token_states and settings.revocation_enabled:
            app.state.token_states = TokenStates(lookup=auth_lookup(app.state.http, settings.auth_url))
        tasks: list[asyncio.Task[None]] = []
        for hook in parts.on_startup:
            await hook(app)
        if settings.background_tasks:
            app.state.broker.start()
            relay = OutboxRelay(
                engine=app.state.engine,
                broker=app.state.broker,
                service=name,
                listen_url=settings.direct_database_url,  # LISTEN never goes through PgBouncer
                batch_size=settings.outbox_batch_size,
                poll_interval=settings.outbox_poll_interval,
                publish_timeout=settings.outbox_publish_timeout,
                max_backoff=settings.outbox_max_backoff,
            )
            tasks.append(asyncio.create_task(relay.run(), name=f"{name}-relay"))
            if parts.handlers:
                app.state.consumer = consumer_for(settings, app.state.sessionmaker, parts.handlers)
                tasks.append(asyncio.create_task(app.state.consumer.start(app.state.broker), name=f"{name}-consumer"))
            if app.state.token_states is not None:
                app.state.token_state_follower = TokenStateFollower(
                    app.state.token_states,
                    broker=app.state.broker,
                    http=app.state.http,
                    auth_url=settings.auth_url,
                    process=name,
                    retry_seconds=settings.token_states_retry_seconds,
                )
                jobs = [*parts.background_jobs, _follow_token_states]
            else:
                jobs = list(parts.background_jobs)
            for job in jobs:
                tasks.append(asyncio.create_task(_supervised(job, app), name=f"{name}-{job.__name__}"))
            for periodic in parts.periodic_jobs:
                tasks.append(asyncio.create_task(periodic.run_forever(app), name=f"{name}-{periodic.name}"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                await _shutdown_step(task.get_name(), _settled(task))
            if app.state.consumer is not None:
                await _shutdown_step("consumer", app.state.consumer.stop())
            if app.state.token_state_follower is not None:
                await _shutdown_step("token state follower", app.state.token_state_follower.close())
            await _shutdown_step("broker", app.state.broker.close())
            await _shutdown_step("http client", app.state.http.aclose())
            await _shutdown_step("database engine", app.state.engine.dispose())

    app = FastAPI(
        title=parts.title,
        description=parts.description,
        version=parts.version,
        lifespan=lifespan,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=None,  # served below from local assets (mif_common.docs_assets)
        redoc_url=None,
        redirect_slashes=False,
        openapi_tags=parts.openapi_tags,
    )
    app.state.build = build_info(name)  # no I/O but one `git rev-parse` in a checkout
    install_offline_docs(app, docs_url=f"{prefix}/docs", openapi_url=f"{prefix}/openapi.json", title=parts.title)
    install_error_handlers(app)
    for router in parts.routers:
        app.include_router(router)
    app.include_router(health_router)
    install_problem_docs(app)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    add_request_guards(app, settings, max_body_bytes=settings.max_body_bytes)  # NUL, bad JSON, slow bodies
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, service=name)
    app.add_middleware(RequestIdMiddleware, version=app.state.build.header)
    app.add_middleware(StripTrailingSlashMiddleware)
    return app


def consumer_for(
    settings: ServiceSettings, sessionmaker: async_sessionmaker[AsyncSession], handlers: Mapping[str, Handler]
) -> EventConsumer:
    return EventConsumer(
        name=consumer_queue_name(settings.service_name),
        sessionmaker=sessionmaker,
        handlers=handlers,
        attempts=settings.consumer_attempts,
        delivery_limit=settings.consumer_delivery_limit,
        prefetch=settings.consumer_prefetch,
        batch_linger=settings.consumer_batch_linger_seconds,
        retry_delays=settings.consumer_retry_delays_seconds,
        dead_letter_after=settings.consumer_dead_letter_after_seconds,
    )


async def _follow_token_states(app: FastAPI) -> None:
    """Keep the token states fresh (snapshot, then auth's `auth.user.*` events)."""
    await app.state.token_state_follower.run()


# A process being stopped must stop: an orchestrator kills it after its grace period (30 s in the k8s
# manifests) anyway, and whichever step held it is what the log must name.
SHUTDOWN_STEP_SECONDS = 5.0
SLOW_SHUTDOWN_STEP_SECONDS = 1.0


async def _settled(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _shutdown_step(name: str, step: Awaitable[object]) -> None:
    """Await one step of the shutdown, bounded; a slow or failing step is logged by name, never raised."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
            await step
    except TimeoutError:
        logger.warning("shutdown: %s did not finish in %gs; left behind", name, SHUTDOWN_STEP_SECONDS)
        return
    except Exception:
        logger.exception("shutdown: %s failed", name)
        return
    elapsed = time.monotonic() - started
    if elapsed > SLOW_SHUTDOWN_STEP_SECONDS:
        logger.warning("shutdown: %s took %.1fs", name, elapsed)


async def _supervised(job: BackgroundJob, app: FastAPI) -> None:
    """Restart a background job after an unexpected crash instead of losing it silently."""
    while True:
        try:
            await job(app)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("background job %s crashed; restarting in 5s", job.__name__)
            await asyncio.sleep(5)
