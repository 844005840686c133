"""Sign-in throttling that cannot be turned against an account's owner (issue 19, item 2).

auth reads the caller's address from the last X-Forwarded-For entry (what the gateway appends); these
tests set it to play several addresses. The settings of these tests (conftest): 3 failures on an account
from one address lock that address out of it, 6 failures from one address on any accounts lock the
address, past 6 failures on an account from everywhere each attempt waits 1, 2, 4, 8, 8... s after the
last failure, and 4 failures within the window tell the owner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

import mif_auth.sign_in
from mif_auth import repository as repo
from mif_auth.sign_in import retry_delay
from mif_auth.testing import PASSWORD, MakeUser

LOGIN = "/api/v1/auth/login"
ALERT = "auth.sign_in_attempts.failed.v1"


class Clock:
    """auth's clock (`mif_common.datetimes.now`, as `sign_in.now`), moved by the test instead of waiting."""

    def __init__(self) -> None:
        self.current = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(mif_auth.sign_in, "now", fake)
    return fake


async def sign_in(client: httpx.AsyncClient, username: str, password: str, address: str | None) -> httpx.Response:
    """A sign-in from `address` (None: the test client's own address, 203.0.113.7)."""
    headers = {"X-Forwarded-For": address} if address else {}
    return await client.post(LOGIN, data={"username": username, "password": password}, headers=headers)


async def alerts(db_session: AsyncSession) -> list[dict[str, Any]]:
    rows = await db_session.execute(
        text("SELECT envelope FROM outbox WHERE type = :t ORDER BY created_at, id"), {"t": ALERT}
    )
    return [r.envelope for r in rows]


async def test_wrong_passwords_from_one_address_do_not_stop_the_owner_elsewhere(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    statuses = [(await sign_in(client, user["username"], "nope", "198.51.100.66")).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    owner = await sign_in(client, user["username"], PASSWORD, "192.0.2.10")
    assert owner.status_code == 200, owner.text
    assert owner.json()["access_token"]


async def test_brute_force_on_one_account_from_one_address_is_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    # Username and e-mail name the same account: typing one or the other does not double the budget.
    for identifier in (user["username"], user["email"].upper(), user["username"]):
        assert (await sign_in(client, identifier, "nope", "198.51.100.7")).status_code == 401
    locked = await sign_in(client, user["username"], PASSWORD, "198.51.100.7")
    assert locked.status_code == 429  # even the right password, from this address
    assert locked.headers["content-type"] == "application/problem+json"
    assert 0 < int(locked.headers["retry-after"]) <= 900
    assert "from this address" in locked.json()["detail"]
    # The refused attempt checked no password and is not a failure: the lock does not grow.
    assert (await sign_in(client, user["username"], PASSWORD, "198.51.100.8")).status_code == 200


async def test_password_spraying_from_one_address_is_refused(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user()
    for n in range(6):
        assert (await sign_in(client, f"victim{n}", "Printemps2024!", "198.51.100.9")).status_code == 401
    sprayed = await sign_in(client, user["username"], PASSWORD, "198.51.100.9")
    assert sprayed.status_code == 429
    assert "from this address" in sprayed.json()["detail"]
    assert int(sprayed.headers["retry-after"]) > 0
    assert (await sign_in(client, user["username"], PASSWORD, "198.51.100.10")).status_code == 200


async def test_failures_from_many_addresses_only_slow_the_account_down(
    client: httpx.AsyncClient, make_user: MakeUser, clock: Clock
) -> None:
    user = await make_user()  # signs in once from the test client's address: its usual address
    addresses = (f"10.0.{n // 250}.{n % 250 + 1}" for n in range(1000))
    for _ in range(6):
        assert (await sign_in(client, user["username"], "nope", next(addresses))).status_code == 401
    waits = []
    for _ in range(5):
        slowed = await sign_in(client, user["username"], "nope", next(addresses))
        assert slowed.status_code == 429
        assert "try again in" in slowed.json()["detail"]
        waits.append(int(slowed.headers["retry-after"]))
        clock.advance(waits[-1] - 0.5)
        assert (await sign_in(client, user["username"], "nope", next(addresses))).status_code == 429  # not yet
        clock.advance(0.5)
        assert (await sign_in(client, user["username"], "nope", next(addresses))).status_code == 401
    assert waits == [1, 2, 4, 8, 8]  # growing, never beyond the cap
    # The owner, from its usual address, is not slowed down at all...
    assert (await sign_in(client, user["username"], PASSWORD, None)).status_code == 200
    # ... and from a new one waits seconds, then signs in with the right password.
    slowed = await sign_in(client, user["username"], PASSWORD, "192.0.2.44")
    assert slowed.status_code == 429
    assert int(slowed.headers["retry-after"]) == 8
    clock.advance(8)
    owner = await sign_in(client, user["username"], PASSWORD, "192.0.2.44")
    assert owner.status_code == 200, owner.text


async def test_an_unknown_account_is_slowed_down_alike(client: httpx.AsyncClient, clock: Clock) -> None:
    """429 or not must not tell which accounts exist."""
    for n in range(6):
        assert (await sign_in(client, "nobody.here", "nope", f"10.9.0.{n + 1}")).status_code == 401
    slowed = await sign_in(client, "nobody.here", "nope", "10.9.0.99")
    assert slowed.status_code == 429
    assert slowed.headers["retry-after"] == "1"


async def test_sign_ins_on_an_account_under_attack_are_checked_one_at_a_time(
    db_session: AsyncSession, service_engine: AsyncEngine
) -> None:
    """Parallel guesses from many addresses cannot share one delay slot: the account's try-lock is held
    by one checking transaction; another gets False at once, without waiting."""
    assert await repo.try_lock_sign_in(db_session, "user:424242")
    async with service_engine.connect() as other, other.begin():
        taken = await other.scalar(
            text("SELECT pg_try_advisory_xact_lock(:c, hashtext(:k))"),
            {"c": repo._SIGN_IN_LOCK_CLASS, "k": "user:424242"},
        )
        free = await other.scalar(
            text("SELECT pg_try_advisory_xact_lock(:c, hashtext(:k))"),
            {"c": repo._SIGN_IN_LOCK_CLASS, "k": "user:434343"},
        )
    assert (taken, free) == (False, True)


async def test_an_admin_unlock_clears_the_throttling(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession, clock: Clock
) -> None:
    user = await make_user()
    admin = await make_user("admin")
    for n in range(3):
        assert (await sign_in(client, user["username"], "nope", "198.51.100.20")).status_code == 401
    for n in range(3):
        assert (await sign_in(client, user["username"], "nope", f"198.51.100.{30 + n}")).status_code == 401
    assert (await sign_in(client, user["username"], PASSWORD, "198.51.100.20")).status_code == 429  # locked here
    assert (await sign_in(client, user["username"], PASSWORD, "198.51.100.40")).status_code == 429  # slowed
    unlock = f"/api/v1/users/{user['id']}/unlock"
    for role in ("responsable", "technicien", "client"):
        other = await make_user(role)
        refused = await client.post(unlock, headers=other["headers"])
        assert refused.status_code == 403, role
        assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.post(unlock)).status_code == 401
    assert (await client.post("/api/v1/users/999999/unlock", headers=admin["headers"])).status_code == 404
    response = await client.post(unlock, headers=admin["headers"])
    assert response.status_code == 204
    assert response.content == b""
    row = (
        await db_session.execute(
            text("SELECT unlocked_at, unlocked_by FROM sign_in_guard WHERE user_id = :u"), {"u": user["id"]}
        )
    ).one()
    assert row.unlocked_by == admin["id"] and row.unlocked_at is not None
    assert (await sign_in(client, user["username"], PASSWORD, "198.51.100.40")).status_code == 200
    assert (await sign_in(client, user["username"], PASSWORD, "198.51.100.20")).status_code == 200


async def test_an_unlock_leaves_an_address_spraying_many_accounts_refused(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    admin = await make_user("admin")
    for n in range(6):
        await sign_in(client, f"victim{n}", "nope", "198.51.100.50")
    assert (await client.post(f"/api/v1/users/{user['id']}/unlock", headers=admin["headers"])).status_code == 204
    assert (await sign_in(client, user["username"], PASSWORD, "198.51.100.50")).status_code == 429


async def test_the_owner_is_told_once_per_window(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession, clock: Clock
) -> None:
    user = await make_user()
    other = await make_user()
    for n in range(3):
        await sign_in(client, user["username"], "nope", "198.51.100.60")
    await sign_in(client, other["username"], "nope", "198.51.100.61")
    assert await alerts(db_session) == []  # 3 failures: below the threshold (4)
    await sign_in(client, user["username"], "nope", "198.51.100.62")
    sent = await alerts(db_session)
    assert len(sent) == 1
    assert sent[0]["subject"] == str(user["id"])
    data = sent[0]["data"]
    assert {k: data[k] for k in ("user_id", "failures", "addresses", "window_seconds")} == {
        "user_id": user["id"],
        "failures": 4,
        "addresses": 2,
        "window_seconds": 900,
    }
    assert datetime.fromisoformat(data["since"]) < datetime.fromisoformat(data["occurred_at"])
    # More failures within the window: no second notice.
    await sign_in(client, user["username"], "nope", "198.51.100.63")
    await sign_in(client, user["username"], "nope", "198.51.100.64")
    assert len(await alerts(db_session)) == 1
    # Failures on an account that does not exist tell nobody.
    for n in range(5):
        await sign_in(client, "nobody.here", "nope", f"198.51.100.{70 + n}")
    assert len(await alerts(db_session)) == 1
    # The next window: a new notice once the threshold is crossed again.
    clock.advance(901)
    for n in range(3):
        await sign_in(client, user["username"], "nope", f"198.51.100.{80 + n}")
    assert len(await alerts(db_session)) == 1
    await sign_in(client, user["username"], "nope", "198.51.100.83")
    sent = await alerts(db_session)
    assert len(sent) == 2
    assert (sent[1]["data"]["failures"], sent[1]["data"]["addresses"]) == (4, 4)


async def test_retry_delays_grow_to_the_cap(mif_settings: Any) -> None:
    delays = [retry_delay(n, mif_settings) for n in range(4, 12)]
    assert delays == [0, 0, 1, 2, 4, 8, 8, 8]
