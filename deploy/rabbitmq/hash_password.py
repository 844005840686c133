"""Password hashes for RabbitMQ definitions files (`rabbit_password_hashing_sha256`).

RabbitMQ stores base64(salt || sha256(salt || password)) with a 4-byte random salt. Use this to put
a user into deploy/rabbitmq/definitions.json without committing the password itself:

    python deploy/rabbitmq/hash_password.py 'the-password'

(`rabbitmqctl hash_password` gives the same kind of hash from a running node.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    salt = os.urandom(4) if salt is None else salt
    if len(salt) != 4:
        raise ValueError("RabbitMQ uses a 4-byte salt")
    digest = hashlib.sha256(salt + password.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def verify(password: str, password_hash: str) -> bool:
    raw = base64.b64decode(password_hash)
    salt, digest = raw[:4], raw[4:]
    return hmac.compare_digest(digest, hashlib.sha256(salt + password.encode("utf-8")).digest())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: hash_password.py PASSWORD")
    print(rabbit_password_hash(sys.argv[1]))
