"""Password policy and hashing (argon2id or bcrypt, configurable parameters, run off the event loop; older
hashes keep verifying and are replaced at the next successful sign-in)."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal, TypeVar

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

_T = TypeVar("_T")

MIN_LENGTH = 8
# bcrypt only reads the first 72 bytes; longer passwords would silently share a hash (and hashes made with
# bcrypt before keep verifying, so the limit stays whatever the scheme).
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


# --- hashing -----------------------------------------------------------------------------------------
#
# New hashes use the configured scheme (argon2id by default, docs/auth.md "Password hashing"); every hash
# in the database, whatever made it (bcrypt at any cost, argon2 at any parameters), keeps verifying: the
# hash names its own scheme and parameters. A hash that is not what the current settings would make is
# replaced at the account's next successful sign-in (`needs_rehash`, sign_in.login).

Scheme = Literal["argon2id", "bcrypt"]

# OWASP Password Storage Cheat Sheet: argon2id with one of these (memory KiB, iterations), parallelism 1,
# which cost about the same; and bcrypt with a work factor of 10 or more. Production refuses less.
OWASP_ARGON2ID_MINIMUMS = ((47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5))
OWASP_BCRYPT_MIN_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class PasswordHashing:
    """How new password hashes are made (`AuthSettings.password_hashing`)."""

    scheme: Scheme = "argon2id"
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    bcrypt_rounds: int = 12

    def describe(self) -> str:
        if self.scheme == "bcrypt":
            return f"bcrypt cost {self.bcrypt_rounds}"
        return f"argon2id m={self.argon2_memory_kib} KiB t={self.argon2_time_cost} p={self.argon2_parallelism}"

    def meets_owasp(self) -> bool:
        """Whether these parameters meet OWASP's password-storage guidance."""
        if self.scheme == "bcrypt":
            return self.bcrypt_rounds >= OWASP_BCRYPT_MIN_ROUNDS
        return any(
            self.argon2_memory_kib >= memory and self.argon2_time_cost >= iterations
            for memory, iterations in OWASP_ARGON2ID_MINIMUMS
        )


# Hashing is CPU-bound and releases the GIL (argon2-cffi and bcrypt are C): it runs on threads of its
# own, never on the event loop, at most one per core up to 4. That also bounds the memory argon2 holds at
# once (19 MiB per hash at the defaults) whatever the number of sign-ins in flight; more would only queue.
HASHING_THREADS = max(1, min(4, os.cpu_count() or 1))
_hashing_pool = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="mif-auth-hashing")

# Verifies an argon2 hash of any parameters (they are read from the hash itself).
_ARGON2_VERIFIER = argon2.PasswordHasher()


@lru_cache(maxsize=8)
def _argon2_hasher(hashing: PasswordHashing) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=hashing.argon2_time_cost,
        memory_cost=hashing.argon2_memory_kib,
        parallelism=hashing.argon2_parallelism,
        hash_len=32,
        salt_len=16,
        type=argon2.Type.ID,
    )


def make_hash(password: str, hashing: PasswordHashing) -> str:
    """A new hash of `password` (blocking: call `hash_password` from async code)."""
    if hashing.scheme == "bcrypt":
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(hashing.bcrypt_rounds)).decode()
    return _argon2_hasher(hashing).hash(password)


def check_hash(password: str, password_hash: str) -> bool:
    """Whether `password` matches `password_hash`, a hash of any scheme and parameters this module ever
    made (blocking: call `verify_password` from async code). An unreadable hash matches nothing."""
    if password_hash.startswith("$argon2"):
        try:
            return _ARGON2_VERIFIER.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    if password_hash.startswith("$2"):
        try:
            # bcrypt reads 72 bytes at most; the policy never let a longer password be set.
            return bcrypt.checkpw(password.encode()[:MAX_BYTES], password_hash.encode())
        except ValueError:
            return False
    return False


def needs_rehash(password_hash: str, hashing: PasswordHashing) -> bool:
    """Whether `password_hash` differs from what `hashing` makes now (another scheme, other parameters,
    stronger or weaker): the account's next successful sign-in replaces it."""
    if hashing.scheme == "bcrypt":
        prefix, _, rest = password_hash.partition("$")[2].partition("$")
        return prefix not in ("2a", "2b", "2y") or rest[:2] != f"{hashing.bcrypt_rounds:02d}"
    if not password_hash.startswith("$argon2id$"):
        return True
    try:
        return _argon2_hasher(hashing).check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


@lru_cache(maxsize=8)
def dummy_hash(hashing: PasswordHashing) -> str:
    """A hash of a random password with the current scheme and parameters, checked when the account does
    not exist: an unknown account costs exactly one verification at the current cost, like a known one."""
    return make_hash(secrets.token_urlsafe(24), hashing)


def _check_or_dummy(password: str, password_hash: str | None, hashing: PasswordHashing) -> bool:
    if password_hash is None:
        check_hash(password, dummy_hash(hashing))
        return False
    return check_hash(password, password_hash)


async def _off_loop(fn: Callable[..., _T], *args: Any) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_hashing_pool, fn, *args)


async def hash_password(password: str, hashing: PasswordHashing) -> str:
    return await _off_loop(make_hash, password, hashing)


async def verify_password(password: str, password_hash: str | None, *, hashing: PasswordHashing) -> bool:
    """Check `password` against an account's hash, or, with None (no such account), against the dummy
    hash of the current settings, at the same cost, and answer False."""
    return await _off_loop(_check_or_dummy, password, password_hash, hashing)


async def prepare_hashing(hashing: PasswordHashing) -> None:
    """Make the dummy hash at start-up, so that the first unknown account does not cost two hashes."""
    await _off_loop(dummy_hash, hashing)
