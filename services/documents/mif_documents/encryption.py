"""Encryption at rest: AES-256-GCM over fixed-size chunks, so that a byte range is served by
decrypting only the chunks it touches.

Stored layout: a 16-byte header (`MIFENC1` + a zero byte + an 8-byte random nonce prefix, one per
file), then one sealed chunk per 64 KiB of plaintext (ciphertext + 16-byte tag; the last one may be
shorter). Chunk i uses the nonce `prefix || i` (32-bit big-endian) and authenticates, as associated
data, the key id, its index and whether it is the last chunk: chunks cannot be reordered, dropped or
moved to another file without failing authentication, and a truncated file fails at its new last
chunk. The number of chunks follows from the plaintext size kept in the database.

Keys come from configuration (`MIF_DOCUMENTS_ENCRYPTION_KEYS` = JSON {key_id: base64 of 32 bytes},
`MIF_DOCUMENTS_ENCRYPTION_KEY_ID` = the active one). Each document records the key id it was written
with, so old keys keep decrypting after a rotation until `reencrypt` has moved every file to the
active key. Never a random per-process key: with encryption on and no valid active key, the service
refuses to start.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from mif_documents.storage import Storage

CHUNK = 64 * 1024
TAG = 16
MAGIC = b"MIFENC1\x00"
PREFIX_BYTES = 8
HEADER = len(MAGIC) + PREFIX_BYTES
SEALED_CHUNK = CHUNK + TAG
MAX_CHUNKS = 2**32


class EncryptionConfigError(RuntimeError):
    """The encryption settings cannot work; the service must not start with them."""


class DecryptionError(Exception):
    """Stored bytes failed authentication (tampered, truncated, or the wrong key)."""


def chunk_count(size: int) -> int:
    return max(1, -(-size // CHUNK))


def sealed_size(size: int) -> int:
    """Stored size of a plaintext of `size` bytes."""
    return HEADER + size + chunk_count(size) * TAG


def _aad(key_id: str, index: int, last: bool) -> bytes:
    encoded = key_id.encode()
    return MAGIC + struct.pack(">H", len(encoded)) + encoded + struct.pack(">QB", index, 1 if last else 0)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


@dataclass(frozen=True)
class Keyring:
    """The configured keys; `active_id` encrypts new files (None: encryption off)."""

    keys: Mapping[str, bytes]
    active_id: str | None

    @property
    def enabled(self) -> bool:
        return self.active_id is not None

    @classmethod
    def from_config(cls, *, enabled: bool, keys: Mapping[str, SecretStr], active_id: str | None) -> Keyring:
        """Decode and check the configured keys; refuses (EncryptionConfigError) what cannot work."""
        decoded: dict[str, bytes] = {}
        for key_id, secret in keys.items():
            if not key_id or len(key_id) > 64 or not key_id.isprintable():
                raise EncryptionConfigError(f"Encryption key id {key_id!r} must be 1 to 64 printable characters.")
            try:
                raw = base64.b64decode(secret.get_secret_value(), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise EncryptionConfigError(f"Encryption key {key_id!r} is not valid base64.") from exc
            if len(raw) != 32:
                raise EncryptionConfigError(
                    f"Encryption key {key_id!r} must be 32 bytes (AES-256) once base64-decoded, not {len(raw)}."
                )
            decoded[key_id] = raw
        if not enabled:
            return cls(keys=decoded, active_id=None)
        if not active_id:
            raise EncryptionConfigError(
                "Encryption at rest is enabled (MIF_DOCUMENTS_ENCRYPTION_ENABLED) but no active key is set: "
                "set MIF_DOCUMENTS_ENCRYPTION_KEY_ID to one of the ids in MIF_DOCUMENTS_ENCRYPTION_KEYS."
            )
        if active_id not in decoded:
            raise EncryptionConfigError(
                f"Encryption at rest is enabled but the active key {active_id!r} is not in "
                "MIF_DOCUMENTS_ENCRYPTION_KEYS (JSON {key_id: base64 of 32 random bytes})."
            )
        return cls(keys=decoded, active_id=active_id)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise DecryptionError(
                f"the encryption key {key_id!r} is no longer configured; it is needed to read this file"
            ) from None


async def encrypt_file(path: Path, *, key_id: str, key: bytes) -> AsyncIterator[bytes]:
    """The sealed form of a local plaintext file, chunk by chunk."""
    size = (await asyncio.to_thread(path.stat)).st_size
    count = chunk_count(size)
    if count > MAX_CHUNKS:
        raise ValueError("file too large to encrypt with 32-bit chunk counters")
    prefix = os.urandom(PREFIX_BYTES)
    aead = AESGCM(key)
    yield MAGIC + prefix
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        for index in range(count):
            plain = await asyncio.to_thread(handle.read, CHUNK)
            last = index == count - 1
            yield aead.encrypt(_nonce(prefix, index), plain, _aad(key_id, index, last))
    finally:
        await asyncio.to_thread(handle.close)


async def encrypt_stream(chunks: AsyncIterator[bytes], *, size: int, key_id: str, key: bytes) -> AsyncIterator[bytes]:
    """The sealed form of a plaintext stream of known `size` (re-encryption)."""
    count = chunk_count(size)
    prefix = os.urandom(PREFIX_BYTES)
    aead = AESGCM(key)
    yield MAGIC + prefix
    index = 0
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        while len(pending) >= CHUNK and index < count - 1:
            yield aead.encrypt(_nonce(prefix, index), bytes(pending[:CHUNK]), _aad(key_id, index, False))
            del pending[:CHUNK]
            index += 1
    if index != count - 1 or index * CHUNK + len(pending) != size:
        raise DecryptionError("the plaintext stream does not have the expected size")
    yield aead.encrypt(_nonce(prefix, index), bytes(pending), _aad(key_id, index, True))


async def decrypt_range(
    storage: Storage, storage_key: str, *, key_id: str, key: bytes, size: int, start: int, end: int
) -> AsyncIterator[bytes]:
    """Plaintext bytes `[start, end)` of a sealed object whose plaintext is `size` bytes long,
    decrypting only the chunks the range touches."""
    if not 0 <= start < end <= size:
        raise ValueError("range outside the document")
    header = b"".join([c async for c in storage.open_range(storage_key, 0, HEADER)])
    if len(header) != HEADER or not header.startswith(MAGIC):
        raise DecryptionError(f"storage object {storage_key} is not an encrypted document")
    prefix = header[len(MAGIC) :]
    aead = AESGCM(key)
    count = chunk_count(size)
    first, last = start // CHUNK, (end - 1) // CHUNK
    raw_start = HEADER + first * SEALED_CHUNK
    raw_end = min(HEADER + (last + 1) * SEALED_CHUNK, sealed_size(size))
    index = first
    pending = bytearray()

    def open_chunk(sealed: bytes, index: int) -> bytes:
        try:
            plain = aead.decrypt(_nonce(prefix, index), sealed, _aad(key_id, index, index == count - 1))
        except InvalidTag as exc:
            raise DecryptionError(f"chunk {index} of storage object {storage_key} failed authentication") from exc
        chunk_start = index * CHUNK
        return plain[max(0, start - chunk_start) : max(0, min(len(plain), end - chunk_start))]

    async for raw in storage.open_range(storage_key, raw_start, raw_end):
        pending += raw
        while len(pending) >= SEALED_CHUNK:
            yield open_chunk(bytes(pending[:SEALED_CHUNK]), index)
            del pending[:SEALED_CHUNK]
            index += 1
    if pending:
        yield open_chunk(bytes(pending), index)
        index += 1
    if index != last + 1:
        raise DecryptionError(f"storage object {storage_key} is shorter than its document")
