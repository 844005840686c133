"""pytest plugin used by every service's tests (registered through the `pytest11` entry point).

- `mif_infra`: the local PostgreSQL/RabbitMQ, or testcontainers with `MIF_TEST_CONTAINERS=1`.
- `mif_database`: one database per xdist worker, provisioned (schema + role per service) and migrated
  with the real Alembic migrations of every built service, once.
- `mif_amqp_url`: a RabbitMQ vhost of its own for the test session.
- `mif_keys`, `make_token`, `auth_headers`: tokens for each role, verified by the app under test.
- A service's conftest defines `mif_service` (a `ServiceUnderTest`); then `db_session` (a rolled-back
  savepoint session per test), `db_sessionmaker` (more sessions in that transaction), `app`, `client`
  (an ASGI client) and `deliver` (an event through the service's real consumer) come for free.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mif_common.app import consumer_for
from mif_common.auth.tokens import ChainedKeys, StaticKeys, TokenVerifier
from mif_common.config import ServiceSettings
from mif_common.db import get_read_session, get_session, make_engine
from mif_common.events import CloudEvent
from mif_common.events.consumer import Handler
from mif_common.listing import connections_of, read_connections
from mif_common.migrations import upgrade
from mif_common.provision import ensure_database, ensure_service_roles, service_database_url
from mif_common.suite import ServiceInfo, built_services, service
from mif_common.testing.events import Deliver, envelope
from mif_common.testing.infra import Infra, start_infra
from mif_common.testing.keys import TEST_AUDIENCE, TEST_ISSUER, TestKeys

Handlers = Mapping[str, Handler]


@dataclass(frozen=True)
class ServiceUnderTest:
    name: str
    settings_cls: type[ServiceSettings]
    create_app: Callable[[Any], FastAPI]
    settings_overrides: Mapping[str, Any] = field(default_factory=dict)
    # What the service's consumer runs: its `handlers.HANDLERS`, as `create_app` hands it to `ServiceParts`.
    handlers: Handlers = field(default_factory=dict)

    @property
    def info(self) -> ServiceInfo:
        return service(self.name)


@dataclass(frozen=True)
class TestDatabase:
    __test__ = False
    name: str
    admin_dsn: str

    @property
    def dsn(self) -> str:
        """Superuser DSN to this database (asyncpg style)."""
        return self.admin_dsn.rsplit("/", 1)[0] + "/" + self.name

    def url_for(self, service_name: str) -> str:
        """SQLAlchemy URL connecting as the service's own role."""
        return service_database_url(self.admin_dsn, self.name, service(service_name))


def create_test_database(infra: Infra, name: str) -> TestDatabase:
    """Create `name` afresh, provision every built service and run its migrations."""
    services = built_services()

    async def prepare() -> None:
        await ensure_database(infra.admin_dsn, name, recreate=True)
        await ensure_service_roles(infra.admin_dsn, name, services)

    asyncio.run(prepare())
    db = TestDatabase(name=name, admin_dsn=infra.admin_dsn)
    for svc in services:
        upgrade(svc.alembic_ini, db.url_for(svc.name))
    return db


def worker_namespace() -> str:
    """What names this run's databases: the xdist worker, behind `MIF_TEST_NAMESPACE` when set, so that
    two runs of the suite on one machine (two people, or CI beside a developer) never share a database."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    namespace = os.environ.get("MIF_TEST_NAMESPACE", "")
    return f"{namespace}_{worker}" if namespace else worker


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run blocking setup (asyncio.run inside) away from pytest-asyncio's running loop."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


@pytest.fixture(scope="session")
def mif_infra() -> Iterator[Infra]:
    infra = start_infra()
    yield infra
    infra.close()


@pytest.fixture(scope="session")
def mif_database(mif_infra: Infra) -> TestDatabase:
    return _in_thread(lambda: create_test_database(mif_infra, f"mif_test_{worker_namespace()}"))  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def mif_fresh_database(mif_infra: Infra) -> Callable[[str], TestDatabase]:
    """Factory for an extra migrated database (end-to-end runs that commit for real)."""

    def make(suffix: str) -> TestDatabase:
        return _in_thread(lambda: create_test_database(mif_infra, f"mif_test_{worker_namespace()}_{suffix}"))  # type: ignore[no-any-return]

    return make


@pytest.fixture(scope="session")
def mif_amqp_url(mif_infra: Infra) -> str:
    return _in_thread(mif_infra.new_vhost)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def mif_keys() -> TestKeys:
    return TestKeys.generate()


@pytest.fixture(scope="session")
def make_token(mif_keys: TestKeys) -> Callable[..., str]:
    return mif_keys.token


@pytest.fixture(scope="session")
def auth_headers(mif_keys: TestKeys) -> Callable[..., dict[str, str]]:
    """`auth_headers("technicien", user_id=7)` → an Authorization header for that caller."""

    def make(role: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mif_keys.token(role, **kw)}"}

    return make


@pytest.fixture(scope="session")
def _mif_settings_per_service() -> dict[str, ServiceSettings]:
    return {}


@pytest.fixture(scope="session")
async def _mif_engines_per_service() -> AsyncIterator[dict[str, AsyncEngine]]:
    engines: dict[str, AsyncEngine] = {}
    yield engines
    for engine in engines.values():
        await engine.dispose()


# Settings and engine are built once per service and session. They are kept per service name rather
# than as session-scoped fixtures: pytest computes a session fixture once per session, so with two
# services' tests in one run, the second would get the first one's (each conftest overrides
# `mif_service`, but nothing invalidates what was computed from it).


@pytest.fixture
def mif_settings(
    mif_service: ServiceUnderTest,
    mif_database: TestDatabase,
    mif_amqp_url: str,
    _mif_settings_per_service: dict[str, ServiceSettings],
) -> ServiceSettings:
    settings = _mif_settings_per_service.get(mif_service.name)
    if settings is None:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": mif_database.url_for(mif_service.name),
            "amqp_url": mif_amqp_url,
            "background_tasks": False,
            "log_json": False,
            "outbox_poll_interval": 0.2,
            "outbox_max_backoff": 1.0,
            # Test tokens name users no auth knows (`auth_headers(role, user_id=...)`): the token-state
            # check is tested on its own (libs/mif-common/tests, tests/test_revocation_e2e.py).
            "revocation_enabled": False,
        }
        settings = _mif_settings_per_service[mif_service.name] = mif_service.settings_cls(
            **(values | dict(mif_service.settings_overrides))
        )
    return settings


@pytest.fixture
def service_engine(
    mif_service: ServiceUnderTest,
    mif_settings: ServiceSettings,
    _mif_engines_per_service: dict[str, AsyncEngine],
) -> AsyncEngine:
    engine = _mif_engines_per_service.get(mif_service.name)
    if engine is None:
        # Kept for the whole session, one per service and worker: one idle connection each (tests/support.py
        # counts the run's connections); the overflow serves a test that holds a few at once.
        engine = _mif_engines_per_service[mif_service.name] = make_engine(
            mif_settings.database_url, schema=mif_service.info.schema, pool_size=1, max_overflow=5
        )
    return engine


@pytest.fixture
async def db_session(
    service_engine: AsyncEngine, mif_service: ServiceUnderTest, mif_settings: ServiceSettings
) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction rolled back after the test; code under test may commit
    (its commits release savepoints)."""
    async with service_engine.connect() as conn:
        trans = await conn.begin()
        session = AsyncSession(
            bind=conn,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
            info={"source": mif_service.name, "settings": mif_settings},
        )
        try:
            yield session
        finally:
            await session.close()
            await trans.rollback()


@pytest.fixture
def db_sessionmaker(
    db_session: AsyncSession, mif_service: ServiceUnderTest, mif_settings: ServiceSettings
) -> async_sessionmaker[AsyncSession]:
    """Sessions on the test's connection, for code that owns its transactions (a consumer, a scheduler
    pass): their commits are savepoints of the rolled-back transaction."""
    return async_sessionmaker(
        bind=db_session.bind,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        info={"source": mif_service.name, "settings": mif_settings},
    )


@pytest.fixture
def deliver(
    db_session: AsyncSession,
    db_sessionmaker: async_sessionmaker[AsyncSession],
    mif_service: ServiceUnderTest,
    mif_settings: ServiceSettings,
) -> Deliver:
    """Hand an event to the service's real consumer path (inbox dedupe included), inside the test's
    rolled-back transaction: `await deliver("auth.user.created.v1", data)` (envelope attributes as
    keywords: `event_id=`, `time=`...) or `await deliver(cloud_event)`. False for a duplicate."""
    handlers = mif_service.handlers
    consumer = consumer_for(mif_settings, db_sessionmaker, handlers)

    async def handle(event: CloudEvent | str, data: Mapping[str, Any] | None = None, **fields: Any) -> bool:
        if isinstance(event, str):
            event = envelope(event, data or {}, **fields)
        # Close the test session's open savepoint first, so that the handler's writes land in the test's
        # outer transaction and a later request that rolls back its own savepoint cannot undo them.
        await db_session.commit()
        processed = await consumer.handle(event, handlers[event.type])
        db_session.expire_all()  # the handler wrote through another session
        return processed

    return handle


@pytest.fixture
async def app(
    mif_service: ServiceUnderTest, mif_settings: ServiceSettings, mif_keys: TestKeys, db_session: AsyncSession
) -> AsyncIterator[FastAPI]:
    application = mif_service.create_app(mif_settings)

    async def test_session() -> AsyncIterator[AsyncSession]:
        try:
            yield db_session
            await db_session.commit()
        except BaseException:
            await db_session.rollback()
            raise

    application.dependency_overrides[get_session] = test_session
    # Reads outside a transaction (`mif_common.db.ReadSession`) use the test's session too.
    application.dependency_overrides[get_read_session] = test_session
    # Lists read on a connection of their own (`mif_common.listing`): here, in the test's transaction.
    application.dependency_overrides[read_connections] = connections_of(db_session)
    async with application.router.lifespan_context(application):
        # Test tokens verify alongside whatever the service trusts itself (auth's own keyring).
        own = application.state.token_verifier
        application.state.token_verifier = TokenVerifier(
            ChainedKeys(StaticKeys(mif_keys.jwks), own.keys),
            issuer=TEST_ISSUER,
            audience=TEST_AUDIENCE,
            algorithms=["EdDSA", "RS256"],
        )
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
