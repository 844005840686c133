from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_assets.testing import InProcessAssets, assets_in_process, equipement_data
from mif_auth.config import AuthSettings
from mif_auth.main import create_app as create_auth_app
from mif_auth.schemas import UserCreate
from mif_auth.testing import PASSWORD, user_data
from mif_auth.users import create_user
from mif_common.auth.tokens import ChainedKeys, StaticKeys, TokenVerifier
from mif_common.db import get_session, make_engine
from mif_common.testing.keys import TestKeys
from mif_common.testing.plugin import ServiceUnderTest, TestDatabase
from mif_planning.config import PlanningSettings
from mif_planning.handlers import HANDLERS
from mif_planning.main import create_app
from mif_planning.testing import Deliver, Headers, Make, MakeTech, RoutingTransport, Tech

ADMIN_ID, MANAGER_ID = 1001, 1002
AUTH_HOST, ASSETS_HOST = "auth.test", "assets.test"


@pytest.fixture(scope="session")
def mif_service() -> ServiceUnderTest:
    return ServiceUnderTest(
        "planning",
        PlanningSettings,
        create_app,
        handlers=HANDLERS,
        settings_overrides={
            "auth_url": f"http://{AUTH_HOST}",
            "assets_url": f"http://{ASSETS_HOST}",
            "public_url": "https://mif.example.ma",
        },
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The plugin's ASGI client, with planning's outgoing HTTP client answering no host: auth and
    assets are "down" unless a test starts them (`owners`). Nothing ever leaves the machine."""
    own_http, nowhere = app.state.http, httpx.AsyncClient(transport=RoutingTransport({}))
    app.state.http = nowhere
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    finally:
        app.state.http = own_http
        await nowhere.aclose()


@pytest.fixture
def admin(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("admin", user_id=ADMIN_ID)


@pytest.fixture
def manager(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("responsable", user_id=MANAGER_ID)


@pytest.fixture
def client_user(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("client", user_id=3001, client_id=7)


@pytest.fixture
def sessions(db_sessionmaker: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    """The plugin's `db_sessionmaker`, by the name planning's tests know it."""
    return db_sessionmaker


_ids = itertools.count(50_001)


@pytest.fixture
def known_user(deliver: Deliver) -> Callable[..., Any]:
    """Put a user in planning's replica, as an `auth.user.created.v1` event would."""

    async def make(user_id: int | None = None, **fields: Any) -> int:
        uid = user_id or next(_ids)
        await deliver("auth.user.created.v1", user_data(uid, **fields))
        return uid

    return make


@pytest.fixture
def known_equipement(deliver: Deliver) -> Callable[..., Any]:
    """Put an equipment in planning's replica, as an `assets.equipement.created.v1` event would."""

    async def make(equipement_id: int | None = None, **fields: Any) -> int:
        eid = equipement_id or next(_ids)
        await deliver("assets.equipement.created.v1", equipement_data(eid, **fields))
        return eid

    return make


@pytest.fixture
def make_technicien(
    client: httpx.AsyncClient, manager: Headers, known_user: Callable[..., Any], auth_headers: Callable[..., Headers]
) -> MakeTech:
    """A technician profile through the API (as a manager), for a fresh user of role technicien."""

    async def make(**fields: Any) -> Tech:
        user_id = await known_user()
        response = await client.post("/api/v1/techniciens", json={"user_id": user_id, **fields}, headers=manager)
        assert response.status_code == 201, response.text
        body = response.json()
        return Tech(id=body["id"], user_id=user_id, headers=auth_headers("technicien", user_id=user_id), body=body)

    return make


@pytest.fixture
def make_competence(client: httpx.AsyncClient, manager: Headers) -> Make:
    names = itertools.count(1)

    async def make(**fields: Any) -> dict[str, Any]:
        body = {"nom": f"Compétence {next(names)}", "domaine": "mécanique", **fields}
        response = await client.post("/api/v1/techniciens/competences", json=body, headers=manager)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


@pytest.fixture
def make_plan(client: httpx.AsyncClient, manager: Headers, known_equipement: Callable[..., Any]) -> Make:
    """A plan through the API (as a manager) on a fresh known equipment unless one is given."""

    async def make(**fields: Any) -> dict[str, Any]:
        if "equipement_id" not in fields:
            fields["equipement_id"] = await known_equipement()
        calendrier = fields.get("declencheur", "calendrier") == "calendrier"
        body = {"frequence": "mensuel", **fields} if calendrier else fields
        response = await client.post("/api/v1/planning", json=body, headers=manager)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return make


# --- the owners of the replicas, in process (no mocks: the real auth and assets apps) -----------


@dataclass
class InProcessAuth:
    app: FastAPI
    session: AsyncSession
    settings: AuthSettings

    async def user(self, role: str, **fields: Any) -> int:
        """Create a user in auth's database (in its rolled-back transaction); its id."""
        n = uuid.uuid4().hex[:8]
        data = {
            "username": f"{role[:4]}{n}",
            "full_name": f"{role.title()} {n}",
            "email": f"{role[:4]}{n}@mif.ma",
            "role": role,
            "password": PASSWORD,
            **fields,
        }
        user = await create_user(self.session, data=UserCreate(**data), settings=self.settings)
        await self.session.flush()
        return user.id


@contextlib.asynccontextmanager
async def auth_in_process(
    *, database_url: str, amqp_url: str, keys: TestKeys, key_dir: str
) -> AsyncIterator[InProcessAuth]:
    """The real auth app in this process, trusting the test keys, its writes rolled back at the end."""
    settings = AuthSettings(
        environment="test",
        database_url=database_url,
        amqp_url=amqp_url,
        background_tasks=False,
        log_json=False,
        argon2_memory_kib=1024,  # cheap hashing
        argon2_time_cost=1,
        key_dir=key_dir,
    )
    app = create_auth_app(settings)
    engine = make_engine(database_url, schema="auth", pool_size=2)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            session = AsyncSession(
                bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint", info={"source": "auth"}
            )

            async def rolled_back_session() -> AsyncIterator[AsyncSession]:
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise

            app.dependency_overrides[get_session] = rolled_back_session
            try:
                async with app.router.lifespan_context(app):
                    app.state.token_verifier = TokenVerifier(
                        ChainedKeys(StaticKeys(keys.jwks), StaticKeys(app.state.keyring.jwks)),
                        issuer=settings.jwt_issuer,
                        audience=settings.jwt_audience,
                        algorithms=settings.jwt_algorithms,
                    )
                    yield InProcessAuth(app=app, session=session, settings=settings)
            finally:
                await session.close()
                await transaction.rollback()
    finally:
        await engine.dispose()


@dataclass
class Owners:
    auth: InProcessAuth
    assets: InProcessAssets


@pytest.fixture
async def owners(
    app: FastAPI,
    mif_database: TestDatabase,
    mif_amqp_url: str,
    mif_keys: TestKeys,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Owners]:
    """The real auth and assets services, in process and rolled back, answering planning's questions
    about users and equipment at `auth.test` and `assets.test`."""
    key_dir = str(tmp_path_factory.mktemp("auth-keys"))
    async with (
        auth_in_process(
            database_url=mif_database.url_for("auth"), amqp_url=mif_amqp_url, keys=mif_keys, key_dir=key_dir
        ) as auth,
        assets_in_process(
            database_url=mif_database.url_for("assets"), amqp_url=mif_amqp_url, jwks=[mif_keys.jwks]
        ) as assets,
    ):
        routes: dict[str, httpx.AsyncBaseTransport] = {
            AUTH_HOST: httpx.ASGITransport(app=auth.app),
            ASSETS_HOST: assets.transport,
        }
        own_http, to_owners = app.state.http, httpx.AsyncClient(transport=RoutingTransport(routes))
        app.state.http = to_owners
        try:
            yield Owners(auth=auth, assets=assets)
        finally:
            app.state.http = own_http
            await to_owners.aclose()
