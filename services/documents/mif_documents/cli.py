"""Operator commands of the documents service, with the service's own settings (`MIF_DOCUMENTS_*`):

    python -m mif_documents.cli reencrypt [--limit N]   # move every file to the active encryption key
    python -m mif_documents.cli cleanup                 # one pass of the cleanup job, now

`reencrypt` after a key rotation: set the new key id as `MIF_DOCUMENTS_ENCRYPTION_KEY_ID`, keep the old
key in `MIF_DOCUMENTS_ENCRYPTION_KEYS`, roll the service, run this, then remove the old key. It also
encrypts files stored in clear before encryption was turned on. Safe to interrupt and to run again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta

from mif_common.db import make_engine, make_sessionmaker
from mif_documents.config import DocumentsSettings
from mif_documents.encryption import EncryptionConfigError, Keyring
from mif_documents.jobs import cleanup_once, reencrypt_documents
from mif_documents.storage import LocalStorage
from mif_documents.vault import Vault


async def run(command: str, *, limit: int | None) -> str:
    settings = DocumentsSettings()
    keyring = Keyring.from_config(
        enabled=settings.encryption_enabled, keys=settings.encryption_keys, active_id=settings.encryption_key_id
    )
    vault = Vault(LocalStorage(settings.storage_dir), keyring)
    engine = make_engine(settings.database_url, schema=settings.db_schema, pool_size=2)
    sessionmaker = make_sessionmaker(engine, source=settings.service_name)
    try:
        if command == "reencrypt":
            moved = await reencrypt_documents(sessionmaker=sessionmaker, vault=vault, limit=limit)
            return f"{moved} file(s) now under key {keyring.active_id!r}"
        report = await cleanup_once(
            sessionmaker=sessionmaker, vault=vault, grace=timedelta(seconds=settings.orphan_grace_seconds)
        )
        return f"{report.orphans} orphan file(s), {report.incomplete} abandoned upload(s), {report.purged} purge(s)"
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mif_documents.cli", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    reencrypt = sub.add_parser("reencrypt", help="move every stored file to the active encryption key")
    reencrypt.add_argument("--limit", type=int, default=None, help="stop after this many files")
    sub.add_parser("cleanup", help="remove orphan files, abandoned uploads and due purges now")
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(run(args.command, limit=getattr(args, "limit", None))))
    except (EncryptionConfigError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
