"""HMAC-signed, expiring links that work without an Authorization header (a document's download URL,
an export file's link), and the secret they are signed with.

- `LinkSigner`: base64url HMAC-SHA256 of `context + message`. The context separates the uses: a
  signature made for one kind of link (documents' `mif-documents/download/v1:`) is worth nothing for
  another, even with the same secret.
- `make_token` / `read_token`: a link as ONE path segment, `<id>.<expires unix>.<sig>` (reports'
  `/api/v1/rapports/fichiers/{token}`); reading never raises, whatever a client sends.
- `load_link_secret`: the secret is shared by every replica of a service. In production it must be
  configured and real; in development and tests one is generated once and kept in a file next to the
  service's files (every replica using that storage agrees on it). Never a per-process random secret,
  which would make a link signed by one replica fail on another or after a restart.
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

from pydantic import SecretStr

from mif_common.config import PLACEHOLDER_SECRETS

SECRET_FILE = ".url-secret"
# What a configured or generated secret must have; the signer itself refuses less than half of it.
MIN_SECRET_LENGTH = 32
MIN_KEY_LENGTH = 16
# A base64url SHA-256 MAC is 43 characters; anything much longer is not worth hashing.
MAX_SIGNATURE_LENGTH = 100
MAX_TOKEN_LENGTH = 200
# Unix seconds up to year 33658 and ids that fit a BIGINT: longer digit runs are garbage.
_MAX_EXPIRES_DIGITS = 12
_MAX_ID = 2**63 - 1


class LinkSecretError(RuntimeError):
    """No usable link-signing secret; the service must not start."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LinkSigner:
    """Signs and checks messages for one kind of link (`context`)."""

    def __init__(self, secret: bytes, *, context: bytes) -> None:
        if len(secret) < MIN_KEY_LENGTH:
            raise LinkSecretError("the link-signing secret is too short")
        if not context:
            raise ValueError("a link signer needs a context (e.g. b'mif-documents/download/v1:')")
        self._secret = secret
        self._context = context

    def signature(self, message: str) -> str:
        """base64url (unpadded) HMAC-SHA256 of the context and `message`."""
        return _b64url(hmac.new(self._secret, self._context + message.encode(), hashlib.sha256).digest())

    def valid(self, message: str, sig: str | None) -> bool:
        """True only for the signature of `message`; compared in constant time."""
        if not sig or len(sig) > MAX_SIGNATURE_LENGTH or not sig.isascii():
            return False
        return hmac.compare_digest(self.signature(message), sig)


def _now(now: float | None) -> float:
    return now if now is not None else time.time()


def make_token(signer: LinkSigner, entity_id: int, ttl_seconds: int, now: float | None = None) -> str:
    """`<entity_id>.<expires unix>.<sig>`, valid for `ttl_seconds`; one URL path segment (base64url and
    digits only)."""
    if not 0 <= entity_id <= _MAX_ID:
        raise ValueError(f"entity_id must be a non-negative BIGINT, not {entity_id}")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, not {ttl_seconds}")
    message = f"{entity_id}.{int(_now(now)) + ttl_seconds}"
    return f"{message}.{signer.signature(message)}"


def _digits(text: str, max_length: int) -> bool:
    # isdigit() alone also takes "²" and other Unicode digits; the caller has checked the text is ASCII.
    return 0 < len(text) <= max_length and text.isdigit()


def read_token(signer: LinkSigner, token: str, now: float | None = None) -> int | None:
    """The id of an untampered, unexpired token; None for anything else (never raises)."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    raw_id, raw_expires, sig = parts
    if not _digits(raw_id, len(str(_MAX_ID))) or not _digits(raw_expires, _MAX_EXPIRES_DIGITS):
        return None
    # The signature covers the text as sent, so a re-spelt number ("007") fails like any other change.
    if not signer.valid(f"{raw_id}.{raw_expires}", sig):
        return None
    entity_id = int(raw_id)
    if entity_id > _MAX_ID or int(raw_expires) <= _now(now):
        return None
    return entity_id


def load_link_secret(
    configured: SecretStr | None, *, production: bool, variable: str, directory: Path, file_name: str = SECRET_FILE
) -> bytes:
    """The configured secret (`variable` names its environment variable in the errors); without one, in
    development and tests, the one generated once in `directory / file_name`."""
    if configured is not None and configured.get_secret_value():
        value = configured.get_secret_value()
        if production and (
            value in PLACEHOLDER_SECRETS or value.upper().startswith("CHANGE-ME") or len(value) < MIN_SECRET_LENGTH
        ):
            raise LinkSecretError(
                f"{variable} must be a real secret in production (at least {MIN_SECRET_LENGTH} "
                "random characters, not a placeholder)."
            )
        return value.encode()
    if production:
        raise LinkSecretError(
            f"{variable} is not set: production needs one secret shared by every replica of the service to sign "
            "its links (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
        )
    return _persisted_secret(directory / file_name)


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
    raise LinkSecretError(f"{path} does not hold a usable link-signing secret; delete it to generate a new one.")
