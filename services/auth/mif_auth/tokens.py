"""Issuing access tokens (JWT, asymmetric) and opaque refresh tokens (stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from typing import Any

import jwt

from mif_auth.config import AuthSettings
from mif_auth.keys import KeyRing
from mif_auth.models import User
from mif_common.auth.tokens import ACCESS_TOKEN_TYPE


def access_token(user: User, *, keyring: KeyRing, settings: AuthSettings) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user.id),
        "role": user.role,
        "username": user.username,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_ttl_seconds,
        "jti": uuid.uuid4().hex,
        "typ": ACCESS_TOKEN_TYPE,
        "tv": user.token_version,
    }
    if user.client_id is not None:
        claims["client_id"] = user.client_id
    key = keyring.current
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})


def new_refresh_token() -> tuple[str, str]:
    """A random refresh token and the hash we store (the token itself is never stored)."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_refresh_token(raw)


def hash_refresh_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
