"""Signed, expiring download URLs: what a document's `path` is.

`/api/v1/documents/{id}/download?expires=<unix seconds>&sig=<base64url HMAC-SHA256 of "id:expires">`.
The URL works without an Authorization header (existing clients fetch it so); without a valid,
unexpired signature the answer is 404, like a document that does not exist.

The secret is shared by every replica: `MIF_DOCUMENTS_URL_SECRET`, required in production. In
development and tests, one is generated once and kept in `<storage_dir>/.url-secret` (every replica
using that storage agrees on it); never a per-process random secret, which would make URLs signed by
one replica fail on another or after a restart.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from mif_common.config import PLACEHOLDER_SECRETS
from mif_documents.config import DocumentsSettings

SECRET_FILE = ".url-secret"
MIN_SECRET_LENGTH = 32
_CONTEXT = b"mif-documents/download/v1:"


class UrlSecretError(RuntimeError):
    """No usable URL-signing secret; the service must not start."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class UrlSigner:
    def __init__(self, secret: bytes, *, ttl_seconds: int, prefix: str = "/api/v1/documents") -> None:
        if len(secret) < 16:
            raise UrlSecretError("the URL-signing secret is too short")
        self._secret = secret
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    def signature(self, document_id: int, expires: int) -> str:
        message = _CONTEXT + f"{document_id}:{expires}".encode()
        return _b64url(hmac.new(self._secret, message, hashlib.sha256).digest())

    def path(self, document_id: int, *, now: float | None = None) -> str:
        """A download path valid for the configured time to live."""
        expires = int(now if now is not None else time.time()) + self.ttl_seconds
        return f"{self.prefix}/{document_id}/download?expires={expires}&sig={self.signature(document_id, expires)}"

    def verify(self, document_id: int, expires: str | None, sig: str | None, *, now: float | None = None) -> bool:
        """True only for an untampered signature whose expiry has not passed."""
        if not expires or not sig or not expires.isascii() or not expires.isdigit() or len(expires) > 12:
            return False
        if len(sig) > 100 or not sig.isascii():
            return False
        expected = self.signature(document_id, int(expires))
        if not hmac.compare_digest(expected, sig):
            return False
        return int(expires) > (now if now is not None else time.time())


def load_url_secret(settings: DocumentsSettings) -> bytes:
    """The configured secret; in development and tests, the persisted generated one."""
    if settings.url_secret is not None and settings.url_secret.get_secret_value():
        value = settings.url_secret.get_secret_value()
        if settings.is_production and (
            value in PLACEHOLDER_SECRETS or value.upper().startswith("CHANGE-ME") or len(value) < MIN_SECRET_LENGTH
        ):
            raise UrlSecretError(
                f"MIF_DOCUMENTS_URL_SECRET must be a real secret in production (at least {MIN_SECRET_LENGTH} "
                "random characters, not a placeholder)."
            )
        return value.encode()
    if settings.is_production:
        raise UrlSecretError(
            "MIF_DOCUMENTS_URL_SECRET is not set: production needs one secret shared by every documents replica "
            "to sign download URLs (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
        )
    return _persisted_secret(settings.storage_dir / SECRET_FILE)


def _persisted_secret(path: Path) -> bytes:
    """Read the generated secret, creating it exactly once (O_EXCL: concurrent starters agree)."""
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_urlsafe(48).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    for _ in range(50):  # another starter may be between its create and its write
        value = path.read_bytes().strip()
        if len(value) >= MIN_SECRET_LENGTH:
            return value
        time.sleep(0.02)
    raise UrlSecretError(f"{path} does not hold a usable URL-signing secret; delete it to generate a new one.")
