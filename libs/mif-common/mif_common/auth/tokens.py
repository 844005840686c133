"""Access-token verification against the auth service's public keys (JWKS)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from jwt import PyJWK

from mif_common.auth.principal import Principal, Role
from mif_common.errors import ServiceUnavailable, Unauthorized

logger = logging.getLogger(__name__)

ACCESS_TOKEN_TYPE = "access"
# Key types each allowed algorithm may be verified with: refuses HS256-with-the-public-key tricks.
_KEY_TYPES = {"EdDSA": "OKP", "RS256": "RSA", "ES256": "EC"}


class KeySource(Protocol):
    async def get(self, kid: str) -> PyJWK | None: ...


class StaticKeys:
    """Keys given up front (tests, tools)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = {k["kid"]: PyJWK(dict(k)) for k in jwks["keys"]}

    async def get(self, kid: str) -> PyJWK | None:
        return self._keys.get(kid)


class ChainedKeys:
    """First source that knows the kid wins (tests add their key in front of the real source)."""

    def __init__(self, *sources: KeySource) -> None:
        self.sources = sources

    async def get(self, kid: str) -> PyJWK | None:
        for source in self.sources:
            key = await source.get(kid)
            if key is not None:
                return key
        return None


# After a failed JWKS fetch, the next one may come this much later (a working fetch: `min_refetch_interval`).
_RETRY_AFTER_FAILURE = 0.5


class JwksClient:
    """Fetches and caches the JWKS; refetches on an unknown `kid` (key rotation), at most every few s."""

    def __init__(
        self, url: str, http: httpx.AsyncClient, *, ttl: float = 300.0, min_refetch_interval: float = 5.0
    ) -> None:
        self.url = url
        self._http = http
        self._ttl = ttl
        self._min_interval = min_refetch_interval
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = 0.0
        self._failed_at = -_RETRY_AFTER_FAILURE
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if now - self._fetched_at < self._min_interval or now - self._failed_at < _RETRY_AFTER_FAILURE:
                return
            try:
                response = await self._http.get(self.url, timeout=3.0)
                response.raise_for_status()
                keys = {}
                for raw in response.json().get("keys", []):
                    try:
                        keys[raw["kid"]] = PyJWK(raw)
                    except (KeyError, jwt.PyJWKError):
                        logger.warning("ignoring unusable JWKS key %s", raw.get("kid"))
                self._keys = keys
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, ValueError) as exc:
                # Only a fetch that worked holds refetches back for `min_refetch_interval`: after a failure
                # (auth still starting, or slow under load) a new key is asked for again within a second,
                # instead of every token signed with it being refused for the whole interval.
                logger.warning("JWKS fetch from %s failed: %s", self.url, exc)
                self._failed_at = time.monotonic()

    async def get(self, kid: str) -> PyJWK | None:
        """The key, or None when auth's key set does not have it; 503 when the key is not known here and
        auth's keys cannot be fetched (auth starting, or slow): the token may well be valid, so its
        holder is told to try again, not that it is refused."""
        stale = time.monotonic() - self._fetched_at > self._ttl
        if kid not in self._keys or stale:
            await self._refresh()
        key = self._keys.get(kid)
        if key is None and self._failed_at > self._fetched_at:
            raise ServiceUnavailable(
                "The keys that sign access tokens could not be fetched from the auth service; try again.",
                headers={"Retry-After": "1"},
            )
        return key


class TokenVerifier:
    """Checks signature, algorithm allow-list, exp/nbf/iat, issuer, audience and token type."""

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        algorithms: list[str],
        leeway: int = 10,
        cache_size: int = 4096,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = [a for a in algorithms if a in _KEY_TYPES]
        self.leeway = leeway
        self.cache_size = cache_size
        self._verified: dict[str, _Verified] = {}

    async def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once every check passed; `Unauthorized` with the reason otherwise."""
        return dict((await self._verified_token(token)).claims)

    async def principal(self, token: str) -> Principal:
        verified = await self._verified_token(token)
        if verified.principal is None:
            verified.principal = principal_from_claims(verified.claims)
        return verified.principal

    async def _verified_token(self, token: str) -> _Verified:
        """A token that passed every check is remembered (up to `cache_size` of them, the oldest
        forgotten first), so a client's next requests skip the signature check (~0.25 ms of CPU with
        EdDSA on the build machine). The answer stays the one a full check would give: a remembered
        token is accepted only while it has not expired and while the key source still hands out the
        very key object that verified it (a JWKS refresh, or a key withdrawn from it, means a full
        check again). Nothing else a check looks at changes with time once a token has passed it
        (`nbf` and `iat` only recede into the past)."""
        verified = self._verified.get(token)
        if verified is not None:
            if time.time() < verified.expires and await self.keys.get(verified.kid) is verified.key:
                return verified
            self._verified.pop(token, None)
        claims, kid, key = await self._check(token)
        verified = _Verified(claims=claims, kid=kid, key=key, expires=float(claims["exp"]) + self.leeway)
        if self.cache_size:
            if len(self._verified) >= self.cache_size:
                self._verified.pop(next(iter(self._verified)))
            self._verified[token] = verified
        return verified

    async def _check(self, token: str) -> tuple[dict[str, Any], str, PyJWK]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is malformed.") from exc
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise Unauthorized("The access token's signing algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("The access token has no key id.")
        key = await self.keys.get(kid)
        if key is None:
            raise Unauthorized("The access token was signed with an unknown key.")
        if key.key_type != _KEY_TYPES[alg]:
            raise Unauthorized("The access token's algorithm does not match its key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("The access token is not valid yet.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is invalid.") from exc
        if claims.get("typ") != ACCESS_TOKEN_TYPE:
            raise Unauthorized("This token is not an access token.")
        return claims, kid, key


@dataclass(slots=True)
class _Verified:
    claims: dict[str, Any]
    kid: str
    key: PyJWK
    expires: float  # exp + leeway, as time.time()
    principal: Principal | None = None  # built on first use (claims() alone does not need it)


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    try:
        client_id = claims.get("client_id")
        return Principal(
            user_id=int(claims["sub"]),
            role=Role(claims["role"]),
            client_id=int(client_id) if client_id is not None else None,
            token_version=int(claims.get("tv", 0)),
            token_id=str(claims["jti"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("The access token's claims are incomplete.") from exc


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
