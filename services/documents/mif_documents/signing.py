"""Signed, expiring download URLs: what a document's `path` is.

`/api/v1/documents/{id}/download?expires=<unix seconds>&sig=<base64url HMAC-SHA256 of "id:expires">`.
The URL works without an Authorization header (existing clients fetch it so); without a valid,
unexpired signature the answer is 404, like a document that does not exist.

The secret is shared by every replica: `MIF_DOCUMENTS_URL_SECRET`, required in production. In
development and tests, one is generated once and kept in `<storage_dir>/.url-secret` (every replica
using that storage agrees on it). Signing and the secret's rules are `mif_common.signed_links`, which
reports' export links use too; this module keeps documents' URL shape.
"""

from __future__ import annotations

import time

from mif_common.signed_links import SECRET_FILE, LinkSecretError, LinkSigner, load_link_secret
from mif_documents.config import DocumentsSettings

__all__ = ["SECRET_FILE", "UrlSecretError", "UrlSigner", "load_url_secret"]

# The context of every URL signed so far: changing it would void the links clients hold.
_CONTEXT = b"mif-documents/download/v1:"

# The same error as the shared loader's (not a subclass), so `except UrlSecretError` catches it.
UrlSecretError = LinkSecretError


class UrlSigner:
    def __init__(self, secret: bytes, *, ttl_seconds: int, prefix: str = "/api/v1/documents") -> None:
        self._links = LinkSigner(secret, context=_CONTEXT)
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    def signature(self, document_id: int, expires: int) -> str:
        return self._links.signature(f"{document_id}:{expires}")

    def path(self, document_id: int, *, now: float | None = None) -> str:
        """A download path valid for the configured time to live."""
        expires = int(now if now is not None else time.time()) + self.ttl_seconds
        return f"{self.prefix}/{document_id}/download?expires={expires}&sig={self.signature(document_id, expires)}"

    def verify(self, document_id: int, expires: str | None, sig: str | None, *, now: float | None = None) -> bool:
        """True only for an untampered signature whose expiry has not passed."""
        if not expires or not expires.isascii() or not expires.isdigit() or len(expires) > 12:
            return False
        if not self._links.valid(f"{document_id}:{int(expires)}", sig):
            return False
        return int(expires) > (now if now is not None else time.time())


def load_url_secret(settings: DocumentsSettings) -> bytes:
    """The configured secret; in development and tests, the persisted generated one."""
    return load_link_secret(
        settings.url_secret,
        production=settings.is_production,
        variable="MIF_DOCUMENTS_URL_SECRET",
        directory=settings.storage_dir,
        file_name=SECRET_FILE,
    )
