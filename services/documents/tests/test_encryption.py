"""Encryption at rest: chunked AES-256-GCM (ranges decrypt only what they need), tampering detected,
key rotation with re-encryption, and the refusal to start with encryption on and no usable key."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_common.config import ServiceSettings
from mif_documents.encryption import (
    CHUNK,
    HEADER,
    MAGIC,
    SEALED_CHUNK,
    DecryptionError,
    EncryptionConfigError,
    Keyring,
    decrypt_range,
    encrypt_file,
    sealed_size,
)
from mif_documents.jobs import reencrypt_documents
from mif_documents.main import create_app
from mif_documents.storage import LocalStorage
from mif_documents.testing import Headers, Known, Upload, pdf_bytes
from mif_documents.vault import Vault


def new_key() -> SecretStr:
    return SecretStr(base64.b64encode(os.urandom(32)).decode())


K1, K2 = new_key(), new_key()


def keyring(active: str | None, **keys: SecretStr) -> Keyring:
    return Keyring.from_config(enabled=active is not None, keys=keys, active_id=active)


@pytest.fixture
def use_keys(app: FastAPI) -> Callable[..., Vault]:
    """Swap the app's vault for one with these keys (same storage)."""

    def swap(active: str | None, **keys: SecretStr) -> Vault:
        app.state.vault = Vault(app.state.vault.storage, keyring(active, **keys))
        return app.state.vault  # type: ignore[no-any-return]

    return swap


async def stored(db_session: AsyncSession, document_id: int) -> tuple[str, str | None]:
    row = (
        await db_session.execute(text("SELECT storage_key, key_id FROM document WHERE id = :i"), {"i": document_id})
    ).one()
    return row.storage_key, row.key_id


def path_of(storage_dir: Path, key: str) -> Path:
    return storage_dir / key[:2] / key[2:4] / key


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
async def test_every_range_decrypts_to_the_original(tmp_path: Path, size: int) -> None:
    storage = LocalStorage(tmp_path)
    storage.prepare()
    plain = os.urandom(size)
    source = tmp_path / "plain"
    source.write_bytes(plain)
    key = os.urandom(32)
    sealed = await storage.save(encrypt_file(source, key_id="k1", key=key))
    assert sealed.size == sealed_size(size)
    raw = path_of(tmp_path, sealed.key).read_bytes()
    assert raw.startswith(MAGIC)
    if size >= 16:  # a few random bytes may appear in any ciphertext by chance; 16+ may not
        assert plain[:64] not in raw
    edges = sorted({0, 1, size // 2, max(0, CHUNK - 1), CHUNK, CHUNK + 1, 2 * CHUNK, size - 1, size})
    ranges = [(a, b) for a in edges for b in edges if 0 <= a < b <= size]
    for start, end in ranges:
        got = b"".join(
            [c async for c in decrypt_range(storage, sealed.key, key_id="k1", key=key, size=size, start=start, end=end)]
        )
        assert got == plain[start:end], (start, end)


async def _read_all(storage: LocalStorage, key: str, *, size: int, secret: bytes, key_id: str = "k1") -> bytes:
    chunks = decrypt_range(storage, key, key_id=key_id, key=secret, size=size, start=0, end=size)
    return b"".join([c async for c in chunks])


@pytest.mark.parametrize("damage", ["flip", "truncate", "swap", "wrong-key-id", "wrong-key"])
async def test_tampering_is_detected(tmp_path: Path, damage: str) -> None:
    storage = LocalStorage(tmp_path)
    storage.prepare()
    size = 3 * CHUNK
    (tmp_path / "plain").write_bytes(os.urandom(size))
    key = os.urandom(32)
    sealed = await storage.save(encrypt_file(tmp_path / "plain", key_id="k1", key=key))
    file = path_of(tmp_path, sealed.key)
    raw = bytearray(file.read_bytes())
    secret, key_id = key, "k1"
    if damage == "flip":
        raw[HEADER + SEALED_CHUNK + 10] ^= 1
    elif damage == "truncate":
        del raw[HEADER + 2 * SEALED_CHUNK :]
    elif damage == "swap":
        first = raw[HEADER : HEADER + SEALED_CHUNK]
        raw[HEADER : HEADER + SEALED_CHUNK] = raw[HEADER + SEALED_CHUNK : HEADER + 2 * SEALED_CHUNK]
        raw[HEADER + SEALED_CHUNK : HEADER + 2 * SEALED_CHUNK] = first
    elif damage == "wrong-key-id":
        key_id = "k2"
    else:
        secret = os.urandom(32)
    file.write_bytes(bytes(raw))
    with pytest.raises((DecryptionError, OSError)):
        await _read_all(storage, sealed.key, size=size, secret=secret, key_id=key_id)


async def test_encrypted_upload_round_trip_and_ranges(
    client: httpx.AsyncClient,
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    use_keys: Callable[..., Vault],
    db_session: AsyncSession,
    storage_dir: Path,
) -> None:
    use_keys("k1", k1=K1)
    content = pdf_bytes(200_001)
    document = (await upload(await known_intervention(), manager, content)).json()
    key, key_id = await stored(db_session, document["id"])
    assert key_id == "k1"
    raw = path_of(storage_dir, key).read_bytes()
    assert raw.startswith(MAGIC) and content[:1000] not in raw and len(raw) == sealed_size(len(content))
    assert (await client.get(document["path"])).content == content
    part = await client.get(document["path"], headers={"Range": f"bytes={CHUNK - 5}-{2 * CHUNK + 5}"})
    assert part.status_code == 206 and part.content == content[CHUNK - 5 : 2 * CHUNK + 6]


async def test_a_tampered_encrypted_file_is_not_served(
    client: httpx.AsyncClient,
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    use_keys: Callable[..., Vault],
    db_session: AsyncSession,
    storage_dir: Path,
) -> None:
    use_keys("k1", k1=K1)
    document = (await upload(await known_intervention(), manager, pdf_bytes(1000))).json()
    key, _ = await stored(db_session, document["id"])
    file = path_of(storage_dir, key)
    raw = bytearray(file.read_bytes())
    raw[HEADER + 5] ^= 0x40
    file.write_bytes(bytes(raw))
    response = await client.get(document["path"])
    assert response.status_code == 500  # logged; never the altered bytes
    assert response.headers["content-type"] == "application/problem+json"


async def test_rotation_keeps_old_files_readable_and_reencryption_moves_them(
    client: httpx.AsyncClient,
    app: FastAPI,
    manager: Headers,
    upload: Upload,
    known_intervention: Known,
    use_keys: Callable[..., Vault],
    db_session: AsyncSession,
    storage_dir: Path,
) -> None:
    intervention_id = await known_intervention()
    contents = [pdf_bytes(5000 + i) for i in range(3)]
    use_keys(None)
    clear = (await upload(intervention_id, manager, contents[0])).json()
    use_keys("k1", k1=K1)
    under_k1 = (await upload(intervention_id, manager, contents[1])).json()
    vault = use_keys("k2", k1=K1, k2=K2)  # rotation: k2 active, k1 still decrypts
    under_k2 = (await upload(intervention_id, manager, contents[2])).json()
    documents = [clear, under_k1, under_k2]
    assert [(await stored(db_session, d["id"]))[1] for d in documents] == [None, "k1", "k2"]
    for document, content in zip(documents, contents, strict=True):
        assert (await client.get(document["path"])).content == content

    old_keys = [(await stored(db_session, d["id"]))[0] for d in documents[:2]]
    await db_session.commit()
    sessionmaker = async_sessionmaker(
        bind=db_session.bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )
    assert await reencrypt_documents(sessionmaker=sessionmaker, vault=vault) == 2
    assert await reencrypt_documents(sessionmaker=sessionmaker, vault=vault) == 0
    db_session.expire_all()
    assert [(await stored(db_session, d["id"]))[1] for d in documents] == ["k2", "k2", "k2"]
    assert not any(path_of(storage_dir, k).exists() for k in old_keys)

    use_keys("k2", k2=K2)  # k1 retired: everything is still readable
    for document, content in zip(documents, contents, strict=True):
        assert (await client.get(document["path"])).content == content
    app.state.vault = Vault(vault.storage, keyring(None))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"encryption_enabled": True}, "no active key is set"),
        ({"encryption_enabled": True, "encryption_key_id": "k9", "encryption_keys": {"k1": K1}}, "'k9' is not in"),
        (
            {"encryption_enabled": True, "encryption_key_id": "k1", "encryption_keys": {"k1": SecretStr("nope!")}},
            "base64",
        ),
        (
            {"encryption_enabled": True, "encryption_key_id": "k1", "encryption_keys": {"k1": SecretStr("c2hvcnQ=")}},
            "must be 32 bytes",
        ),
        ({"encryption_enabled": False, "encryption_keys": {"k1": SecretStr("c2hvcnQ=")}}, "must be 32 bytes"),
    ],
    ids=["no-key-id", "unknown-key-id", "not-base64", "short-key", "bad-key-even-when-off"],
)
async def test_the_service_refuses_to_start_without_a_usable_key(
    mif_settings: ServiceSettings, tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    app = create_app(mif_settings.model_copy(update={"storage_dir": tmp_path, **overrides}))  # type: ignore[arg-type]
    with pytest.raises(EncryptionConfigError, match=message) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert isinstance(refused.value, RuntimeError)


async def test_keys_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from mif_documents.config import DocumentsSettings

    monkeypatch.setenv("MIF_DOCUMENTS_ENCRYPTION_ENABLED", "true")
    monkeypatch.setenv("MIF_DOCUMENTS_ENCRYPTION_KEYS", f'{{"2026-01": "{K1.get_secret_value()}"}}')
    monkeypatch.setenv("MIF_DOCUMENTS_ENCRYPTION_KEY_ID", "2026-01")
    settings = DocumentsSettings()
    ring = Keyring.from_config(
        enabled=settings.encryption_enabled, keys=settings.encryption_keys, active_id=settings.encryption_key_id
    )
    assert ring.active_id == "2026-01" and ring.keys["2026-01"] == base64.b64decode(K1.get_secret_value())
    assert K1.get_secret_value() not in repr(settings)
