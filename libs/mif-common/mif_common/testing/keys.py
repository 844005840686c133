"""Signing keys and tokens for tests: a throwaway Ed25519 key and a JWKS that publishes it."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from mif_common.auth.principal import Role

TEST_ISSUER = "mif-auth"
TEST_AUDIENCE = "mif-api"


@dataclass
class TestKeys:
    __test__ = False
    private_key: Ed25519PrivateKey
    kid: str

    @classmethod
    def generate(cls) -> TestKeys:
        return cls(private_key=Ed25519PrivateKey.generate(), kid=f"test-{uuid.uuid4().hex[:8]}")

    @property
    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "EdDSA"})
        return {"keys": [jwk]}

    def token(
        self,
        role: Role | str,
        *,
        user_id: int = 1,
        client_id: int | None = None,
        ttl: int = 900,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "role": str(role),
            "iss": TEST_ISSUER,
            "aud": TEST_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "typ": "access",
            "tv": 0,
        }
        if client_id is not None:
            payload["client_id"] = client_id
        payload.update(claims)
        return jwt.encode(payload, self.private_key, algorithm="EdDSA", headers={"kid": self.kid, **(headers or {})})
