"""Access-token verification against the auth service's public keys (JWKS)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import httpx
import jwt
from jwt import PyJWK

from mif_common.auth.principal import Principal, Role
from mif_common.errors import Unauthorized

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
        self._lock = asyncio.Lock()

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self._min_interval:
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
            except (httpx.HTTPError, ValueError) as exc:
                logger.warning("JWKS fetch from %s failed: %s", self.url, exc)
            finally:
                self._fetched_at = time.monotonic()

    async def get(self, kid: str) -> PyJWK | None:
        stale = time.monotonic() - self._fetched_at > self._ttl
        if kid not in self._keys or stale:
            await self._refresh()
        return self._keys.get(kid)


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
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.algorithms = [a for a in algorithms if a in _KEY_TYPES]
        self.leeway = leeway

    async def claims(self, token: str) -> dict[str, Any]:
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
        return claims

    async def principal(self, token: str) -> Principal:
        return principal_from_claims(await self.claims(token))


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
