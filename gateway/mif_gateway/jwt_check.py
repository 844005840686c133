"""Who is calling: the shared `TokenVerifier` (JWKS from auth), a short cache, and revocation.

The verifier checks signature, algorithm allow-list (EdDSA, RS256; key type must match), exp, nbf,
iat, issuer, audience and `typ == "access"`. A verified token is remembered for a few seconds
(never past its expiry) so a busy client's requests skip the signature check; the token state
(mif_common.auth.token_state, the same check every service makes) is looked up on every request, so
the cache never delays a deactivation.
"""

from __future__ import annotations

import time

from mif_common.auth.principal import Principal
from mif_common.auth.token_state import TokenStates
from mif_common.auth.tokens import TokenVerifier, principal_from_claims


class TokenChecker:
    def __init__(
        self,
        verifier: TokenVerifier,
        states: TokenStates | None,
        *,
        cache_seconds: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self.verifier = verifier
        self.states = states
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._cache: dict[str, tuple[Principal, float]] = {}

    async def principal(self, token: str) -> Principal:
        """The caller behind a bearer token; raises `Unauthorized` with a reason otherwise, or
        `TokenStateUnavailable` when auth must be asked about an unknown user and cannot answer."""
        now = time.time()
        cached = self._cache.get(token)
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            claims = await self.verifier.claims(token)
            principal = principal_from_claims(claims)
            if self.cache_size and self.cache_seconds:
                until = min(float(claims["exp"]) + self.verifier.leeway, now + self.cache_seconds)
                if cached is None and len(self._cache) >= self.cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[token] = (principal, until)
        if self.states is not None:
            await self.states.check(principal)
        return principal
