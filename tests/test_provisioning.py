"""Database provisioning: one role and schema per service, and no role can read another's schema."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from mif_common.provision import ensure_database, ensure_service_roles, service_database_url
from mif_common.suite import service
from mif_common.testing.infra import Infra


def test_a_service_role_cannot_read_another_services_schema(mif_infra: Infra) -> None:
    database = f"mif_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_roles"
    auth, assets = service("auth"), service("assets")

    def dsn(name: str) -> str:
        return service_database_url(mif_infra.admin_dsn, database, service(name)).replace("+asyncpg", "")

    async def scenario() -> None:
        await ensure_database(mif_infra.admin_dsn, database, recreate=True)
        await ensure_service_roles(mif_infra.admin_dsn, database, [auth, assets])
        # Idempotent: the run command provisions at every start.
        await ensure_service_roles(mif_infra.admin_dsn, database, [auth, assets])
        owner = await asyncpg.connect(dsn("auth"))
        try:
            await owner.execute("CREATE TABLE auth.secret (v text)")
            await owner.execute("INSERT INTO auth.secret VALUES ('hash')")
        finally:
            await owner.close()
        intruder = await asyncpg.connect(dsn("assets"))
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await intruder.fetch("SELECT * FROM auth.secret")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await intruder.execute("CREATE TABLE auth.planted (v text)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await intruder.execute("CREATE TABLE public.planted (v text)")
            # Its own schema is its own.
            await intruder.execute("CREATE TABLE assets.mine (v text)")
        finally:
            await intruder.close()

    asyncio.run(scenario())
