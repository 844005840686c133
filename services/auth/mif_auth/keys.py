"""Signing keys: load from configuration, or generate and persist one in development.

The newest key signs; earlier keys stay in the JWKS so tokens signed before a rotation verify until
they expire. A production start without a configured key fails instead of inventing one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from mif_auth.config import AuthSettings

SigningKey = Ed25519PrivateKey | RSAPrivateKey


@dataclass(frozen=True)
class KeyPair:
    kid: str
    private_key: SigningKey

    @property
    def algorithm(self) -> str:
        return "EdDSA" if isinstance(self.private_key, Ed25519PrivateKey) else "RS256"

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        raw = OKPAlgorithm.to_jwk(public) if self.algorithm == "EdDSA" else RSAAlgorithm.to_jwk(public)  # type: ignore[arg-type]
        jwk: dict[str, Any] = json.loads(raw)
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.algorithm})
        return jwk


def _load(path: Path) -> KeyPair:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey | RSAPrivateKey):
        raise ValueError(f"{path}: only Ed25519 and RSA signing keys are supported")
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The kid is derived from the public key, so it is stable across restarts and replicas.
    return KeyPair(kid=hashlib.sha256(public_der).hexdigest()[:16], private_key=key)


class KeyRing:
    def __init__(self, current: KeyPair, previous: list[KeyPair]) -> None:
        self.current = current
        self.previous = previous

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> KeyRing:
        if settings.signing_key_file is not None:
            current = _load(settings.signing_key_file)
        elif settings.is_production:
            raise RuntimeError("MIF_AUTH_SIGNING_KEY_FILE must point to the signing key in production")
        else:
            current = _load(_dev_key(settings.key_dir))
        return cls(current, [_load(p) for p in settings.previous_key_files])

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in (self.current, *self.previous)]}


def _dev_key(directory: Path) -> Path:
    path = directory / "signing-key.pem"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = directory / f".signing-key.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        # Two processes starting together: the first rename wins and both then load the same key.
        if not path.exists():
            os.replace(tmp, path)
        else:
            tmp.unlink()
    return path
