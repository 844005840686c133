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
    """Every rule the password breaks, each as the end of a sentence about the password ("must contain
    a digit"), in a fixed order; empty when it is acceptable. See `policy_refusal` for the full sentence."""
    failures = []
    if len(password) < MIN_LENGTH:
        failures.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password.encode()) > MAX_BYTES:
        failures.append(f"must be at most {MAX_BYTES} characters long (accented letters count as two or more)")
    if not re.search(r"[a-z]", password):
        failures.append("must contain a lowercase letter")
    if not re.search(r"[A-Z]", password):
        failures.append("must contain an uppercase letter")
    if not re.search(r"\d", password):
        failures.append("must contain a digit")
    if not re.search(r"[^A-Za-z0-9]", password):
        failures.append("must contain a symbol")
    lowered = password.lower()
    stripped = re.sub(r"[^a-z]", "", lowered)
    if lowered in common_passwords() or (len(stripped) >= 4 and stripped in common_passwords()):
        failures.append("must not be a common password")
    if username and len(username) >= 3 and username.lower() in lowered:
        failures.append("must not contain the username")
    if email and email.split("@")[0].lower() in lowered and len(email.split("@")[0]) >= 3:
        failures.append("must not contain the e-mail address")
    return failures


def policy_refusal(failures: list[str]) -> str:
    """The sentence a user reads: "The password is too weak: it must be at least 8 characters long;
    it must contain a digit."."""
    return "The password is too weak: " + "; ".join(f"it {rule}" for rule in failures) + "."


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
