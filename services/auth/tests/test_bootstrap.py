"""`python -m mif_auth.bootstrap`: the first admin, a generated password outside production, nothing to
do once an active admin exists, a required password in production, input it cannot take."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import text

from mif_auth import bootstrap
from mif_auth.config import AuthSettings
from mif_common.config import ServiceSettings
from mif_common.db import make_engine
from mif_common.testing.plugin import TestDatabase


async def test_first_admin_with_a_generated_password_then_nothing_to_do(
    mif_settings: ServiceSettings,
    mif_fresh_database: Callable[[str], TestDatabase],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A database of its own: the command commits, and the worker's database must keep having no admin.
    database = mif_fresh_database("bootstrap")
    settings = mif_settings.model_copy(update={"database_url": database.url_for("auth")})
    assert isinstance(settings, AuthSettings)
    monkeypatch.setenv("MIF_ADMIN_EMAIL", "chef@usine.ma")
    monkeypatch.setenv("MIF_ADMIN_USERNAME", "chef")
    monkeypatch.delenv("MIF_ADMIN_PASSWORD", raising=False)

    assert await bootstrap.run(settings) == 0
    out = capsys.readouterr().out
    shown = re.fullmatch(
        r"First admin created: chef / chef@usine\.ma, generated password \(shown once\): ([A-Za-z0-9]{16}-Mif7!)\n", out
    )
    assert shown is not None, out
    assert bootstrap.generated_password() != shown.group(1)  # random each time

    engine = make_engine(settings.database_url, schema=settings.db_schema, pool_size=1)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text('SELECT username, email, role, is_active FROM "user"'))).all()
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [("chef", "chef@usine.ma", "admin", True)]

    # Again (the run command calls it at every start): an active admin exists, nothing changes.
    monkeypatch.setenv("MIF_ADMIN_PASSWORD", "Autre!Mot2passe")
    monkeypatch.setenv("MIF_ADMIN_USERNAME", "second")
    assert await bootstrap.run(settings) == 0
    assert capsys.readouterr().out == "An active admin already exists; nothing to do.\n"


async def test_production_requires_the_password(
    mif_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = mif_settings.model_copy(update={"environment": "production"})
    assert isinstance(settings, AuthSettings)
    monkeypatch.delenv("MIF_ADMIN_PASSWORD", raising=False)
    assert await bootstrap.run(settings) == 2
    assert capsys.readouterr().err == "MIF_ADMIN_PASSWORD is required outside development.\n"


async def test_input_the_user_model_refuses_is_said_per_field(
    mif_settings: ServiceSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert isinstance(mif_settings, AuthSettings)
    monkeypatch.setenv("MIF_ADMIN_EMAIL", "not-an-address")
    monkeypatch.setenv("MIF_ADMIN_USERNAME", "chef")
    monkeypatch.setenv("MIF_ADMIN_PASSWORD", "Tres!Solide2025")
    assert await bootstrap.run(mif_settings) == 1
    err = capsys.readouterr().err
    assert err.startswith("Cannot create the first admin: email: "), err
