"""Where the bytes live, behind a small interface: local filesystem today, S3-compatible later.

The interface is what an object store offers too: stage a new object and make it visible in one
step (local: temporary file + fsync + atomic rename; S3: a multipart upload completed at the end),
read a byte range, delete, and list keys with their age (the orphan scan). Keys are random and
never derived from a document's name; nothing here knows about documents, users or encryption.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

READ_CHUNK = 256 * 1024
_WRITE_BUFFER = 256 * 1024
_KEY = re.compile(r"^[0-9a-f]{32}$")
TEMP_DIR_NAME = ".tmp"


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str  # of the stored bytes (hex)


@dataclass(frozen=True, slots=True)
class StoredKey:
    key: str
    modified_at: datetime


def new_key() -> str:
    """128 random bits: unguessable, and sharded by its first two bytes."""
    return secrets.token_hex(16)


def valid_key(key: str) -> bool:
    return bool(_KEY.match(key))


class StagedFile:
    """A new object being written: a local temporary file, hashed and counted as it is written.

    Readable by path until committed (the upload checks its type from the bytes written)."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle: BinaryIO | None = handle
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes (buffered: the disk is touched every 256 KiB, off the event loop)."""
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= _WRITE_BUFFER:
            await self._flush_buffer()

    async def _flush_buffer(self) -> None:
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        assert self._handle is not None, "staged file already closed"
        self._handle.write(data)
        self._hash.update(data)

    async def finish(self) -> None:
        """Everything written reaches the disk (flush + fsync); the file stays readable by path."""
        await self._flush_buffer()
        handle, self._handle = self._handle, None
        if handle is not None:
            await asyncio.to_thread(_sync_and_close, handle)

    async def discard(self) -> None:
        """Drop it (an upload refused or interrupted)."""
        handle, self._handle = self._handle, None
        self._buffer.clear()
        if handle is not None:
            await asyncio.to_thread(handle.close)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path.unlink)


def _sync_and_close(handle: BinaryIO) -> None:
    try:
        handle.flush()
        os.fsync(handle.fileno())
    finally:
        handle.close()


class Storage(Protocol):
    """A blob store. Ranges are half-open byte offsets `[start, end)` of the stored bytes."""

    async def stage(self) -> StagedFile:
        """A new, empty staged object to write into."""
        ...

    async def commit(self, staged: StagedFile) -> StoredObject:
        """Make a staged object durable and visible under a new random key (atomically)."""
        ...

    async def save(self, chunks: AsyncIterable[bytes]) -> StoredObject:
        """Stage, write and commit a stream in one call."""
        ...

    def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The stored bytes `[start, end)` of `key`, in chunks."""
        ...

    async def size(self, key: str) -> int | None:
        """Size of the stored object, None when it does not exist."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> bool:
        """Remove an object; False when it was not there."""
        ...

    def iter_keys(self) -> AsyncIterator[StoredKey]:
        """Every committed object (for the orphan scan), in no particular order."""
        ...

    async def purge_incomplete(self, *, older_than: datetime) -> int:
        """Remove staged objects abandoned before `older_than` (a crash mid-upload); how many."""
        ...


@dataclass
class LocalStorage:
    """Files under `root/ab/cd/<key>`; staging in `root/.tmp` (same filesystem: the rename is atomic).

    `root` must not be inside any folder a web server serves: bytes only leave through the service,
    after the database row and the signed URL were checked."""

    root: Path
    temp: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.temp = self.root / TEMP_DIR_NAME

    def prepare(self) -> None:
        """Create the folders (owner and group only)."""
        for folder in (self.root, self.temp):
            folder.mkdir(mode=0o750, parents=True, exist_ok=True)

    def path_of(self, key: str) -> Path:
        if not valid_key(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    async def stage(self) -> StagedFile:
        def create() -> tuple[Path, BinaryIO]:
            self.temp.mkdir(mode=0o750, parents=True, exist_ok=True)
            path = self.temp / f"{new_key()}.part"
            return path, path.open("xb")

        path, handle = await asyncio.to_thread(create)
        return StagedFile(path, handle)

    async def commit(self, staged: StagedFile) -> StoredObject:
        await staged.finish()
        key = new_key()
        target = self.path_of(key)

        def publish() -> None:
            target.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
            os.replace(staged.path, target)
            _fsync_dir(target.parent)

        await asyncio.to_thread(publish)
        return StoredObject(key=key, size=staged.size, sha256=staged.sha256)

    async def save(self, chunks: AsyncIterable[bytes]) -> StoredObject:
        staged = await self.stage()
        try:
            async for chunk in chunks:
                await staged.write(chunk)
            return await self.commit(staged)
        except BaseException:
            await staged.discard()
            raise

    async def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = end - start
            while remaining > 0:
                chunk = await asyncio.to_thread(handle.read, min(READ_CHUNK, remaining))
                if not chunk:
                    raise OSError(f"storage object {key} is shorter than expected")
                remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self.path_of(key).stat)).st_size
        except FileNotFoundError:
            return None

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def delete(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self.path_of(key).unlink)
        except FileNotFoundError:
            return False
        return True

    async def iter_keys(self) -> AsyncIterator[StoredKey]:
        def shards(folder: Path) -> list[Path]:
            try:
                return sorted(
                    Path(e.path) for e in os.scandir(folder) if e.is_dir() and re.fullmatch(r"[0-9a-f]{2}", e.name)
                )
            except FileNotFoundError:
                return []

        def objects(folder: Path) -> list[StoredKey]:
            found = []
            try:
                for entry in os.scandir(folder):
                    if entry.is_file() and valid_key(entry.name):
                        with contextlib.suppress(FileNotFoundError):
                            mtime = entry.stat().st_mtime
                            found.append(StoredKey(entry.name, datetime.fromtimestamp(mtime, UTC)))
            except FileNotFoundError:
                pass
            return found

        for first in await asyncio.to_thread(shards, self.root):
            for second in await asyncio.to_thread(shards, first):
                for stored in await asyncio.to_thread(objects, second):
                    yield stored

    async def purge_incomplete(self, *, older_than: datetime) -> int:
        limit = older_than.timestamp()

        def purge() -> int:
            removed = 0
            try:
                entries = list(os.scandir(self.temp))
            except FileNotFoundError:
                return 0
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_file() and entry.name.endswith(".part") and entry.stat().st_mtime < limit:
                        os.unlink(entry.path)
                        removed += 1
            return removed

        return await asyncio.to_thread(purge)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: fsync the directory that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
