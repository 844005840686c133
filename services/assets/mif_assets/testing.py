"""Test helpers other suites reuse (assets' own tests, its consumers' tests, end-to-end tests): example
`data` of the events assets publishes, what it wrote to its outbox, the real app in process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.config import AssetsSettings
from mif_assets.events import ClientEvent, EquipementEvent
from mif_assets.main import create_app
from mif_common.auth.tokens import ChainedKeys, StaticKeys, TokenVerifier
from mif_common.db import get_session, make_engine
from mif_common.listing import connections_of, read_connections
from mif_common.testing.events import Deliver as Deliver
from mif_common.testing.events import example

Headers = dict[str, str]
# Fixtures of assets' tests: `make_client(**fields)` / `make_equipement(**fields)` return the created
# JSON; `deliver(verb, event_id=None, **data)` hands an interventions event to the consumer path.
Make = Callable[..., Awaitable[dict[str, Any]]]


def client_data(
    client_id: int, *, is_active: bool = True, version: int = 1, updated_at: datetime | None = None, **fields: Any
) -> dict[str, Any]:
    """`data` of an `assets.client.<verb>.v1` event (docs/events/assets.md), checked against `ClientEvent`;
    `fields` set any other key."""
    return example(
        ClientEvent,
        {
            "client_id": client_id,
            "nom_entreprise": f"Client {client_id}",
            "type_client": "entreprise",
            "niveau_service": "standard",
            "is_active": is_active,
            "ville": None,
            "pays": "Maroc",
            "contrat_debut": None,
            "contrat_fin": None,
            "type_contrat": None,
            "version": version,
            "updated_at": updated_at or datetime.now(UTC),
        }
        | fields,
    )


def equipement_data(
    equipement_id: int,
    *,
    statut: str = "operationnel",
    version: int = 1,
    updated_at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """`data` of an `assets.equipement.<verb>.v1` event (docs/events/assets.md), checked against
    `EquipementEvent`; `fields` set any other key."""
    return example(
        EquipementEvent,
        {
            "equipement_id": equipement_id,
            "nom": f"Compresseur {equipement_id}",
            "type": "compresseur",
            "localisation": "Atelier A",
            "numero_serie": None,
            "statut": statut,
            "criticite": "standard",
            "client_id": None,
            "frequence_entretien": None,
            "version": version,
            "updated_at": updated_at or datetime.now(UTC),
        }
        | fields,
    )


async def outbox_envelopes(session: AsyncSession, *, entity: str, subject: int | str) -> list[Any]:
    """Envelopes in the outbox about one entity (`client` or `equipement`) and id (visible inside the
    writing transaction), oldest first."""
    rows = await session.execute(
        text("SELECT envelope FROM outbox WHERE subject = :s AND type LIKE :p ORDER BY created_at"),
        {"s": str(subject), "p": f"assets.{entity}.%"},
    )
    return [r.envelope for r in rows]


@dataclass
class InProcessAssets:
    app: FastAPI
    transport: httpx.ASGITransport
    session: AsyncSession

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url="http://assets.test", **kw)


@contextlib.asynccontextmanager
async def assets_in_process(
    *, database_url: str, amqp_url: str, jwks: Sequence[Mapping[str, Any]]
) -> AsyncIterator[InProcessAssets]:
    """The real assets app in this process (ASGI), trusting the tokens signed by `jwks`, its writes in
    a transaction rolled back at the end: what another service's tests talk to instead of a mock."""
    settings = AssetsSettings(
        environment="test",
        database_url=database_url,
        amqp_url=amqp_url,
        background_tasks=False,
        log_json=False,
        revocation_enabled=False,  # the test tokens' users are known to no auth
    )
    app = create_app(settings)
    engine = make_engine(database_url, schema=settings.db_schema, pool_size=2)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            session = AsyncSession(
                bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint", info={"source": "assets"}
            )

            async def rolled_back_session() -> AsyncIterator[AsyncSession]:
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise

            app.dependency_overrides[get_session] = rolled_back_session
            app.dependency_overrides[read_connections] = connections_of(session)
            try:
                async with app.router.lifespan_context(app):
                    app.state.token_verifier = TokenVerifier(
                        ChainedKeys(*(StaticKeys(keys) for keys in jwks)),
                        issuer=settings.jwt_issuer,
                        audience=settings.jwt_audience,
                        algorithms=settings.jwt_algorithms,
                    )
                    yield InProcessAssets(app=app, transport=httpx.ASGITransport(app=app), session=session)
            finally:
                await session.close()
                await transaction.rollback()
    finally:
        await engine.dispose()
