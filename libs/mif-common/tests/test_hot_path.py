"""What every request goes through, made cheaper without changing an answer: the token check remembers
tokens it verified, pooled connections are checked without a round trip, list links are encoded once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt import PyJWK
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from mif_common.auth.tokens import StaticKeys, TokenVerifier
from mif_common.db import make_engine
from mif_common.errors import Unauthorized
from mif_common.pagination import PageParams, page_headers
from mif_common.testing.infra import Infra
from mif_common.testing.keys import TEST_AUDIENCE, TEST_ISSUER, TestKeys

# --- token check --------------------------------------------------------------------------------------


class CountingKeys:
    """A key source that counts signature checks (each check asks for the key) and can swap keys."""

    def __init__(self, keys: TestKeys) -> None:
        self.source = StaticKeys(keys.jwks)
        self.lookups = 0

    async def get(self, kid: str) -> PyJWK | None:
        self.lookups += 1
        return await self.source.get(kid)


def verifier(keys: Any, **kwargs: Any) -> TokenVerifier:
    return TokenVerifier(keys, issuer=TEST_ISSUER, audience=TEST_AUDIENCE, algorithms=["EdDSA"], **kwargs)


async def test_a_verified_token_is_remembered_and_answers_the_same() -> None:
    keys = TestKeys.generate()
    check = verifier(StaticKeys(keys.jwks))
    token = keys.token("technicien", user_id=7, client_id=None)
    first = await check.principal(token)
    assert len(check._verified) == 1
    again = await check.principal(token)
    assert again == first and again.user_id == 7
    claims = await check.claims(token)
    claims["role"] = "admin"  # a caller changing its copy changes nothing remembered
    assert (await check.claims(token))["role"] == "technicien"


async def test_a_remembered_token_still_expires() -> None:
    keys = TestKeys.generate()
    check = verifier(StaticKeys(keys.jwks), leeway=0)
    token = keys.token("responsable", ttl=1)
    await check.principal(token)
    assert token in check._verified
    await asyncio.sleep(max(0.0, check._verified[token].expires - time.time()) + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        await check.principal(token)
    assert token not in check._verified


async def test_a_withdrawn_or_replaced_key_means_a_full_check_again() -> None:
    keys = TestKeys.generate()
    source = CountingKeys(keys)
    check = verifier(source)
    token = keys.token("responsable")
    await check.principal(token)
    await check.principal(token)
    assert source.lookups == 2  # the full check once, then the key's identity only
    source.source = StaticKeys({"keys": []})  # the JWKS no longer has it
    with pytest.raises(Unauthorized, match="unknown key"):
        await check.principal(token)
    source.source = StaticKeys(keys.jwks)  # back, as a new key object: verified again, then remembered
    await check.principal(token)
    assert check._verified[token].key is await source.get(keys.kid)


async def test_refusals_are_not_remembered_and_the_cache_is_bounded() -> None:
    keys = TestKeys.generate()
    other = TestKeys(Ed25519PrivateKey.generate(), kid=keys.kid)  # same kid, another key: bad signature
    check = verifier(StaticKeys(keys.jwks), cache_size=2)
    forged = other.token("admin")
    for _ in range(2):
        with pytest.raises(Unauthorized, match="invalid"):
            await check.principal(forged)
    assert not check._verified
    tokens = [keys.token("responsable", user_id=n) for n in (1, 2, 3)]
    for token in tokens:
        await check.principal(token)
    assert list(check._verified) == tokens[1:]  # the oldest went first
    uncached = verifier(StaticKeys(keys.jwks), cache_size=0)
    await uncached.principal(tokens[0])
    assert not uncached._verified


async def test_incomplete_claims_are_refused_by_principal_only() -> None:
    keys = TestKeys.generate()
    check = verifier(StaticKeys(keys.jwks))
    token = jwt.encode(
        {
            "sub": "1",
            "role": "nobody",
            "iss": TEST_ISSUER,
            "aud": TEST_AUDIENCE,
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "jti": "x",
            "typ": "access",
        },
        keys.private_key,
        algorithm="EdDSA",
        headers={"kid": keys.kid},
    )
    assert (await check.claims(token))["role"] == "nobody"
    for _ in range(2):
        with pytest.raises(Unauthorized, match="incomplete"):
            await check.principal(token)


# --- pooled connections -------------------------------------------------------------------------------


@pytest.fixture
async def engine(mif_infra: Infra) -> AsyncIterator[AsyncEngine]:
    url = mif_infra.admin_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = make_engine(url, schema="public", pool_size=2)
    yield engine
    await engine.dispose()


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_pooled_connection_the_server_closed_is_replaced_before_use(
    engine: AsyncEngine, mif_infra: Infra
) -> None:
    """No pre-ping round trip, yet a connection terminated while it sat in the pool (a restart, a
    failover, an idle timeout) never reaches a request."""
    pid = await backend_pid(engine)
    assert await backend_pid(engine) == pid  # the pool hands the same connection back
    admin = await asyncpg.connect(mif_infra.admin_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(0.2)  # the server's goodbye reaches the idle connection
    replacement = await backend_pid(engine)
    assert replacement != pid


async def test_a_checkout_sends_nothing_to_the_server(engine: AsyncEngine) -> None:
    statements: list[str] = []
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        raw.add_query_logger(lambda record: statements.append(record.query))
    for _ in range(3):
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("SELECT 1"))
    # A pre-ping would have sent `BEGIN`, `;` and `ROLLBACK` before each statement.
    assert [s for s in statements if s != "SELECT 1"] == []


# --- paging links -------------------------------------------------------------------------------------


def request_for(query: str, path: str = "/api/v1/things") -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
    }
    return Request(scope)


def links(query: str, *, total: int, limit: int = 10, offset: int = 0) -> list[str]:
    params = PageParams(limit=limit, offset=offset, sort=None, q=None)
    headers = page_headers(request_for(query), total=total, params=params)
    assert headers["X-Total-Count"] == str(total)
    return headers["Link"].split(", ")


def test_links_keep_the_query_and_its_order_and_set_offset_and_limit() -> None:
    assert links("statut=en_cours&sort=-date_creation", total=25, offset=10) == [
        '</api/v1/things?statut=en_cours&sort=-date_creation&offset=0&limit=10>; rel="first"',
        '</api/v1/things?statut=en_cours&sort=-date_creation&offset=0&limit=10>; rel="prev"',
        '</api/v1/things?statut=en_cours&sort=-date_creation&offset=20&limit=10>; rel="next"',
        '</api/v1/things?statut=en_cours&sort=-date_creation&offset=20&limit=10>; rel="last"',
    ]
    # offset and limit stay where the caller put them; values are encoded as a form would.
    assert links("limit=10&q=pompe+%C3%A0+eau&offset=0&x=a%26b", total=5) == [
        '</api/v1/things?limit=10&q=pompe+%C3%A0+eau&offset=0&x=a%26b>; rel="first"',
        '</api/v1/things?limit=10&q=pompe+%C3%A0+eau&offset=0&x=a%26b>; rel="last"',
    ]
    assert links("", total=0) == [
        '</api/v1/things?offset=0&limit=10>; rel="first"',
        '</api/v1/things?offset=0&limit=10>; rel="last"',
    ]


def test_no_links_when_the_query_string_would_make_them_too_long_for_a_proxy() -> None:
    """A 3 kB query string, four times over, is past what the gateway's client (or nginx) reads as one
    header: the response would become a 502. The links are left out; the total stays."""
    params = PageParams(limit=10, offset=10, sort=None, q=None)
    headers = page_headers(request_for("junk=" + "x" * 3000), total=100, params=params)
    assert headers == {"X-Total-Count": "100"}
    assert len(links("junk=" + "x" * 900, total=100, offset=10)) == 4


def test_links_keep_every_value_of_a_repeated_filter() -> None:
    """`statut=a&statut=b` stays both statuts in every link (the next page of the same list)."""
    first, nxt, last = links("statut=ouverte&statut=affectee&offset=0&offset=5", total=30)
    assert nxt == '</api/v1/things?statut=ouverte&statut=affectee&offset=10&limit=10>; rel="next"'
    assert first.startswith("</api/v1/things?statut=ouverte&statut=affectee&offset=0&limit=10>")
    assert last.startswith("</api/v1/things?statut=ouverte&statut=affectee&offset=20&limit=10>")
