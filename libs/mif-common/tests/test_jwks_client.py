"""JwksClient: keys are fetched once and refetched on an unknown key id, at most every few seconds —
but a failed fetch (auth still starting, or slow under load) must not hold the next one back that long,
or every token signed with the new key is refused meanwhile ("signed with an unknown key")."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from mif_common.auth.tokens import JwksClient
from mif_common.errors import ServiceUnavailable


def jwk(kid: str) -> dict[str, str]:
    public = OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key(), as_dict=True)
    return {**public, "kid": kid, "alg": "EdDSA", "use": "sig"}


class Auth:
    """A JWKS endpoint that is down until told otherwise, counting the questions."""

    def __init__(self) -> None:
        self.up = False
        self.keys = [jwk("k1")]
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if not self.up:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": self.keys})


async def test_a_failed_fetch_is_retried_within_a_second_not_after_the_refetch_interval() -> None:
    auth = Auth()
    async with httpx.AsyncClient(transport=httpx.MockTransport(auth.handle)) as http:
        keys = JwksClient("http://auth/jwks", http, min_refetch_interval=60)
        # Auth not up yet: not "unknown key" (a 401 for a token that may be valid) but "try again".
        with pytest.raises(ServiceUnavailable) as unavailable:
            await keys.get("k1")
        assert unavailable.value.headers == {"Retry-After": "1"}
        auth.up = True
        with pytest.raises(ServiceUnavailable):  # within the short pause after a failure: not asked again
            await keys.get("k1")
        await asyncio.sleep(0.6)
        found = await keys.get("k1")
        assert found is not None and auth.calls == 2
        # A working fetch holds refetches back for the whole interval: an unknown kid costs no flood.
        assert await keys.get("k2") is None
        auth.keys.append(jwk("k2"))
        await asyncio.sleep(0.6)
        assert await keys.get("k2") is None and auth.calls == 2
