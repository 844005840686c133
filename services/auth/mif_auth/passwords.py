"""Password policy and hashing (bcrypt, configurable cost, run off the event loop)."""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from importlib import resources

import bcrypt

MIN_LENGTH = 8
# bcrypt only reads the first 72 bytes; longer passwords would silently share a hash.
MAX_BYTES = 72


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("mif_auth").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def policy_failures(password: str, *, username: str | None = None, email: str | None = None) -> list[str]:
    """Every rule the password breaks, as sentences (empty when it is acceptable)."""
    failures = []
    if len(password) < MIN_LENGTH:
        failures.append(f"at least {MIN_LENGTH} characters")
    if len(password.encode()) > MAX_BYTES:
        failures.append(f"at most {MAX_BYTES} bytes")
    if not re.search(r"[a-z]", password):
        failures.append("a lowercase letter")
    if not re.search(r"[A-Z]", password):
        failures.append("an uppercase letter")
    if not re.search(r"\d", password):
        failures.append("a digit")
    if not re.search(r"[^A-Za-z0-9]", password):
        failures.append("a symbol")
    lowered = password.lower()
    stripped = re.sub(r"[^a-z]", "", lowered)
    if lowered in common_passwords() or (len(stripped) >= 4 and stripped in common_passwords()):
        failures.append("not a common password")
    if username and len(username) >= 3 and username.lower() in lowered:
        failures.append("not containing the username")
    if email and email.split("@")[0].lower() in lowered and len(email.split("@")[0]) >= 3:
        failures.append("not containing the e-mail address")
    return failures


async def hash_password(password: str, *, rounds: int) -> str:
    hashed = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(rounds))
    return hashed.decode()


async def verify_password(password: str, password_hash: str) -> bool:
    try:
        return await asyncio.to_thread(bcrypt.checkpw, password.encode()[:MAX_BYTES], password_hash.encode())
    except ValueError:
        return False


# Checked when the account does not exist, so both paths cost one bcrypt verification.
DUMMY_HASH = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(4)).decode()
