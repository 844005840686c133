"""Create the first admin: `python -m mif_auth.bootstrap`.

Reads MIF_ADMIN_EMAIL, MIF_ADMIN_PASSWORD and optionally MIF_ADMIN_USERNAME (default `admin`). In
development an unset password is generated and printed once; elsewhere it is required. Does nothing
when an active admin already exists.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import string
import sys

from pydantic import ValidationError

from mif_auth.config import AuthSettings
from mif_auth.users import bootstrap_admin
from mif_common.db import make_engine, make_sessionmaker
from mif_common.errors import DomainError


def generated_password() -> str:
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(16))
    return f"{core}-Mif7!"


async def run(settings: AuthSettings) -> int:
    email = os.environ.get("MIF_ADMIN_EMAIL", "admin@mif.ma")
    username = os.environ.get("MIF_ADMIN_USERNAME", "admin")
    password = os.environ.get("MIF_ADMIN_PASSWORD", "")
    generated = False
    if not password:
        if settings.is_production:
            print("MIF_ADMIN_PASSWORD is required outside development.", file=sys.stderr)
            return 2
        password, generated = generated_password(), True
    engine = make_engine(
        settings.database_url, schema=settings.db_schema, pool_size=1, max_overflow=0, pgbouncer=settings.db_pgbouncer
    )
    try:
        async with make_sessionmaker(engine, source="auth")() as session:
            try:
                user = await bootstrap_admin(
                    session,
                    username=username,
                    email=email,
                    full_name="Administrateur",
                    password=password,
                    settings=settings,
                )
            except DomainError as exc:
                print(f"Cannot create the first admin. {exc.detail}", file=sys.stderr)
                return 1
            except ValidationError as exc:
                problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
                print(f"Cannot create the first admin: {problems}", file=sys.stderr)
                return 1
            await session.commit()
    finally:
        await engine.dispose()
    if user is None:
        print("An active admin already exists; nothing to do.")
    elif generated:
        print(f"First admin created: {username} / {email}, generated password (shown once): {password}")
    else:
        print(f"First admin created: {username} / {email}")
    return 0


def main() -> None:
    raise SystemExit(asyncio.run(run(AuthSettings())))


if __name__ == "__main__":
    main()
