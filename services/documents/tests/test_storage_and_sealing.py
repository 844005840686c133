"""The local object store and the sealed (encrypted) form below the API: keys that are not storage keys,
a save that fails half-way, objects that are gone, re-encryption of a stream, ranges that cannot be read."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from mif_documents.encryption import (
    CHUNK,
    DecryptionError,
    EncryptionConfigError,
    Keyring,
    decrypt_range,
    encrypt_stream,
    sealed_size,
)
from mif_documents.storage import TEMP_DIR_NAME, LocalStorage


def _storage(tmp_path: Path) -> LocalStorage:
    storage = LocalStorage(tmp_path / "store")
    storage.prepare()
    return storage


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read(storage: LocalStorage, key: str, *, secret: bytes, size: int, start: int, end: int) -> bytes:
    parts = decrypt_range(storage, key, key_id="k1", key=secret, size=size, start=start, end=end)
    return b"".join([c async for c in parts])


@pytest.mark.parametrize("key", ["../../etc/passwd", "ABCDEF" * 6, "0" * 31, "0" * 32 + "/x"])
def test_only_storage_keys_name_a_file(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="not a storage key"):
        _storage(tmp_path).path_of(key)


async def test_a_save_that_fails_half_way_leaves_nothing(tmp_path: Path) -> None:
    storage = _storage(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.save(broken())
    assert [k async for k in storage.iter_keys()] == []
    assert list((storage.root / TEMP_DIR_NAME).iterdir()) == []


async def test_objects_that_are_gone(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    stored = await storage.save(_chunks(b"contenu", 3))
    assert await storage.size(stored.key) == 7
    assert await storage.exists(stored.key)
    assert await storage.delete(stored.key) is True
    assert await storage.delete(stored.key) is False  # deleting twice is not an error
    assert await storage.size(stored.key) is None
    assert not await storage.exists(stored.key)
    # A store never prepared has no objects (and no staging folder to purge).
    empty = LocalStorage(tmp_path / "never-made")
    assert [k async for k in empty.iter_keys()] == []
    assert await empty.exists("0" * 32) is False


async def test_a_range_past_the_end_of_an_object_is_an_error(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    stored = await storage.save(_chunks(b"0123456789", 10))
    assert b"".join([c async for c in storage.open_range(stored.key, 2, 6)]) == b"2345"
    with pytest.raises(OSError, match="shorter than expected"):
        _ = [c async for c in storage.open_range(stored.key, 5, 20)]


@pytest.mark.parametrize("piece", [1000, CHUNK, 3 * CHUNK + 7])
async def test_a_stream_sealed_in_any_pieces_reads_back(tmp_path: Path, piece: int) -> None:
    storage = _storage(tmp_path)
    size = 3 * CHUNK + 5
    plain = os.urandom(size)
    secret = os.urandom(32)
    sealed = await storage.save(encrypt_stream(_chunks(plain, piece), size=size, key_id="k1", key=secret))
    assert sealed.size == sealed_size(size)
    assert await _read(storage, sealed.key, secret=secret, size=size, start=0, end=size) == plain
    assert (
        await _read(storage, sealed.key, secret=secret, size=size, start=CHUNK - 2, end=2 * CHUNK + 3)
        == (plain[CHUNK - 2 : 2 * CHUNK + 3])
    )


# A few bytes short or over once went through: only a whole chunk too many or too few was noticed.
@pytest.mark.parametrize("actual", [2 * CHUNK, 3 * CHUNK, 3 * CHUNK + 4, 3 * CHUNK + 6, 5 * CHUNK])
async def test_a_stream_of_another_size_than_announced_is_refused(tmp_path: Path, actual: int) -> None:
    storage = _storage(tmp_path)
    stream = encrypt_stream(_chunks(os.urandom(actual), 4096), size=3 * CHUNK + 5, key_id="k1", key=os.urandom(32))
    with pytest.raises(DecryptionError, match="does not have the expected size"):
        await storage.save(stream)
    assert [k async for k in storage.iter_keys()] == []


async def test_ranges_that_cannot_be_decrypted(tmp_path: Path) -> None:
    storage = _storage(tmp_path)
    plain_object = await storage.save(_chunks(b"x" * 100, 100))
    with pytest.raises(DecryptionError, match="is not an encrypted document"):
        await _read(storage, plain_object.key, secret=os.urandom(32), size=100, start=0, end=100)
    for start, end in [(5, 5), (-1, 10), (0, 101), (50, 10)]:
        with pytest.raises(ValueError, match="range outside the document"):
            await _read(storage, plain_object.key, secret=os.urandom(32), size=100, start=start, end=end)


def _key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


@pytest.mark.parametrize("key_id", ["", "x" * 65, "tab\there", "line\nbreak"])
def test_key_ids_must_be_short_and_printable(key_id: str) -> None:
    with pytest.raises(EncryptionConfigError, match="must be 1 to 64 printable characters"):
        Keyring.from_config(enabled=True, keys={key_id: _key()}, active_id=key_id)


def test_a_file_sealed_with_a_key_no_longer_configured_says_which() -> None:
    ring = Keyring.from_config(enabled=True, keys={"2026": _key()}, active_id="2026")
    assert ring.enabled
    assert len(ring.key("2026")) == 32
    with pytest.raises(DecryptionError, match="the encryption key '2025' is no longer configured"):
        ring.key("2025")
    off = Keyring.from_config(enabled=False, keys={"2026": _key()}, active_id="2026")
    assert not off.enabled and off.active_id is None
    assert len(off.key("2026")) == 32  # old files stay readable with encryption off
