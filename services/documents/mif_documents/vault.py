"""Documents' bytes: the storage backend plus encryption at rest, one object on `app.state.vault`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from mif_documents.encryption import Keyring, decrypt_range, encrypt_file, encrypt_stream
from mif_documents.storage import StagedFile, Storage


@dataclass(frozen=True, slots=True)
class Kept:
    """What the database records about where a document's bytes are."""

    storage_key: str
    key_id: str | None  # None: stored in clear


class Vault:
    def __init__(self, storage: Storage, keyring: Keyring) -> None:
        self.storage = storage
        self.keyring = keyring

    async def keep(self, staged: StagedFile) -> Kept:
        """Turn a validated staged upload into a stored object (encrypted with the active key when
        encryption is on); the staged file is consumed either way."""
        key_id = self.keyring.active_id
        if key_id is None:
            stored = await self.storage.commit(staged)
            return Kept(stored.key, None)
        try:
            await staged.finish()
            stored = await self.storage.save(encrypt_file(staged.path, key_id=key_id, key=self.keyring.key(key_id)))
        finally:
            await staged.discard()
        return Kept(stored.key, key_id)

    def read(self, *, storage_key: str, key_id: str | None, size: int, start: int, end: int) -> AsyncIterator[bytes]:
        """The document's original bytes `[start, end)`."""
        if key_id is None:
            return self.storage.open_range(storage_key, start, end)
        return decrypt_range(
            self.storage,
            storage_key,
            key_id=key_id,
            key=self.keyring.key(key_id),
            size=size,
            start=start,
            end=end,
        )

    async def rewrap(self, *, storage_key: str, key_id: str | None, size: int) -> Kept:
        """A new stored copy under the active key (key rotation); the old object is left for the caller
        to delete once the database points at the new one."""
        active = self.keyring.active_id
        if active is None:
            raise RuntimeError("re-encryption needs encryption enabled with an active key")
        plain = self.read(storage_key=storage_key, key_id=key_id, size=size, start=0, end=size)
        stored = await self.storage.save(encrypt_stream(plain, size=size, key_id=active, key=self.keyring.key(active)))
        return Kept(stored.key, active)

    async def delete(self, storage_key: str) -> bool:
        return await self.storage.delete(storage_key)
