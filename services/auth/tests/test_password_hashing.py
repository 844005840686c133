"""Password hashing (issue 14): argon2id for new hashes, older hashes (bcrypt at any cost, argon2 at other
parameters) keep signing in and are replaced at the next successful sign-in, in its transaction; a wrong
password never replaces anything; an unknown account costs one verification at the current settings.

The tests' settings (conftest) make argon2 cheap: m=1024 KiB, t=1, p=1."""

from __future__ import annotations

import threading
from typing import Any

import argon2
import bcrypt
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth import passwords
from mif_auth.config import AuthSettings
from mif_auth.models import User
from mif_auth.passwords import PasswordHashing, check_hash, dummy_hash, needs_rehash
from mif_auth.testing import PASSWORD, MakeUser

LOGIN = "/api/v1/auth/login"
CURRENT_PREFIX = "$argon2id$v=19$m=1024,t=1,p=1$"


async def stored_hash(db_session: AsyncSession, user_id: int) -> str:
    result = await db_session.execute(text('SELECT password_hash FROM "user" WHERE id = :id'), {"id": user_id})
    return str(result.scalar_one())


async def set_hash(db_session: AsyncSession, user_id: int, password_hash: str) -> None:
    await db_session.execute(
        text('UPDATE "user" SET password_hash = :h WHERE id = :id'), {"h": password_hash, "id": user_id}
    )
    await db_session.commit()
    db_session.expire_all()


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, data={"username": username, "password": password})


def bcrypt_hash(password: str, rounds: int) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


async def test_new_accounts_get_argon2id_at_the_configured_parameters(
    make_user: MakeUser, db_session: AsyncSession
) -> None:
    user = await make_user()
    stored = await stored_hash(db_session, user["id"])
    assert stored.startswith(CURRENT_PREFIX)
    assert check_hash(PASSWORD, stored) and not check_hash(PASSWORD + "x", stored)


@pytest.mark.parametrize("rounds", [12, 10, 4])
async def test_a_bcrypt_hash_signs_in_and_is_replaced_by_argon2id(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession, rounds: int
) -> None:
    user = await make_user()
    old = bcrypt_hash(PASSWORD, rounds)
    assert old.startswith(f"$2b${rounds:02d}$")
    await set_hash(db_session, user["id"], old)

    response = await sign_in(client, user["username"], PASSWORD)
    assert response.status_code == 200, response.text
    upgraded = await stored_hash(db_session, user["id"])
    assert upgraded != old and upgraded.startswith(CURRENT_PREFIX)
    assert check_hash(PASSWORD, upgraded) and not check_hash("Wr0ng!Passw0rd", upgraded)
    # The new hash signs in, and is not replaced again (it is already what the settings make).
    assert (await sign_in(client, user["username"], PASSWORD)).status_code == 200
    assert await stored_hash(db_session, user["id"]) == upgraded
    # Not a password change: the tokens issued before it still work.
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.status_code == 200


async def test_a_wrong_password_never_upgrades(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession
) -> None:
    user = await make_user()
    old = bcrypt_hash(PASSWORD, 12)
    await set_hash(db_session, user["id"], old)
    assert (await sign_in(client, user["username"], "Wr0ng!Passw0rd")).status_code == 401
    assert await stored_hash(db_session, user["id"]) == old
    # A right password on a deactivated account is no successful sign-in either.
    await db_session.execute(text('UPDATE "user" SET is_active = false WHERE id = :id'), {"id": user["id"]})
    await db_session.commit()
    assert (await sign_in(client, user["username"], PASSWORD)).status_code == 401
    assert await stored_hash(db_session, user["id"]) == old


async def test_an_argon2_hash_of_other_parameters_is_replaced(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession
) -> None:
    user = await make_user()
    older = argon2.PasswordHasher(memory_cost=2048, time_cost=2, parallelism=1).hash(PASSWORD)
    await set_hash(db_session, user["id"], older)
    assert (await sign_in(client, user["username"], PASSWORD)).status_code == 200
    assert (await stored_hash(db_session, user["id"])).startswith(CURRENT_PREFIX)


async def test_the_upgrade_is_part_of_the_sign_in_transaction(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-in that fails after the re-hash (here: issuing the tokens) leaves the old hash."""
    import mif_auth.sign_in

    user = await make_user()
    old = bcrypt_hash(PASSWORD, 4)
    await set_hash(db_session, user["id"], old)

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("token issuing failed")

    monkeypatch.setattr(mif_auth.sign_in, "issue_tokens", broken)
    try:
        response = await sign_in(client, user["username"], PASSWORD)
    except RuntimeError:  # the app's 500 handler may re-raise to the test transport
        pass
    else:
        assert response.status_code == 500, response.text
    db_session.expire_all()
    assert await stored_hash(db_session, user["id"]) == old


async def test_an_unknown_account_is_checked_against_a_dummy_hash_of_the_current_scheme(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashing: PasswordHashing = app.state.settings.password_hashing
    dummy = dummy_hash(hashing)
    assert dummy.startswith(CURRENT_PREFIX) and not needs_rehash(dummy, hashing)
    checked: list[tuple[str, str]] = []
    real_check = passwords.check_hash

    def spy(password: str, password_hash: str) -> bool:
        checked.append((password_hash, threading.current_thread().name))
        return real_check(password, password_hash)

    monkeypatch.setattr(passwords, "check_hash", spy)
    assert (await sign_in(client, "nobody-here", PASSWORD)).status_code == 401
    # Exactly one verification, at the current cost, off the event loop.
    assert checked == [(dummy, checked[0][1])]
    assert checked[0][1].startswith("mif-auth-hashing")


def test_the_dummy_hash_follows_the_scheme() -> None:
    as_bcrypt = PasswordHashing(scheme="bcrypt", bcrypt_rounds=5)
    assert dummy_hash(as_bcrypt).startswith("$2b$05$") and not needs_rehash(dummy_hash(as_bcrypt), as_bcrypt)
    other = PasswordHashing(argon2_memory_kib=2048, argon2_time_cost=1)
    assert dummy_hash(other).startswith("$argon2id$v=19$m=2048,t=1,p=1$")


async def test_hashing_runs_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    real_make = passwords.make_hash

    def spy(password: str, hashing: PasswordHashing) -> str:
        threads.append(threading.current_thread().name)
        return real_make(password, hashing)

    monkeypatch.setattr(passwords, "make_hash", spy)
    made = await passwords.hash_password(PASSWORD, PasswordHashing(argon2_memory_kib=1024, argon2_time_cost=1))
    assert await passwords.verify_password(PASSWORD, made, hashing=PasswordHashing())
    assert threads and threads[0].startswith("mif-auth-hashing")
    assert threads[0] != threading.current_thread().name


def test_needs_rehash() -> None:
    current = PasswordHashing()
    assert needs_rehash(bcrypt_hash(PASSWORD, 4), current)
    assert needs_rehash("not a hash", current)
    assert needs_rehash("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaA", current)
    as_bcrypt = PasswordHashing(scheme="bcrypt", bcrypt_rounds=4)
    assert not needs_rehash(bcrypt_hash(PASSWORD, 4), as_bcrypt)
    assert needs_rehash(bcrypt_hash(PASSWORD, 5), as_bcrypt)
    assert needs_rehash(dummy_hash(PasswordHashing(argon2_memory_kib=1024, argon2_time_cost=1)), as_bcrypt)
    assert not check_hash(PASSWORD, "not a hash") and not check_hash(PASSWORD, "$2b$12$broken")


def test_production_refuses_hashing_below_owasp() -> None:
    assert AuthSettings(environment="production").password_hashing.meets_owasp()
    for memory, iterations in ((47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5)):
        AuthSettings(environment="production", argon2_memory_kib=memory, argon2_time_cost=iterations)
    AuthSettings(environment="production", password_scheme="bcrypt", bcrypt_rounds=10)
    for weak in (
        {"argon2_memory_kib": 1024, "argon2_time_cost": 1},
        {"argon2_memory_kib": 19_456, "argon2_time_cost": 1},
        {"password_scheme": "bcrypt", "bcrypt_rounds": 9},
    ):
        with pytest.raises(ValueError, match="OWASP"):
            AuthSettings(environment="production", **weak)
        AuthSettings(environment="test", **weak)  # tests may hash cheaply


def test_the_largest_argon2_hash_fits_the_column() -> None:
    """The settings' upper bounds keep a hash within `user.password_hash` (varchar 100)."""
    made = passwords.make_hash(PASSWORD, PasswordHashing(argon2_memory_kib=1024, argon2_time_cost=1))
    fields = AuthSettings.model_fields
    largest = made.replace(
        "m=1024,t=1,p=1",
        "m={},t={},p={}".format(
            *(
                next(m.le for m in fields[name].metadata if getattr(m, "le", None) is not None)
                for name in ("argon2_memory_kib", "argon2_time_cost", "argon2_parallelism")
            )
        ),
    )
    assert len(largest) <= User.__table__.c.password_hash.type.length
