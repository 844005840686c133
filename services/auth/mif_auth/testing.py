"""Test helpers other suites reuse (auth's own tests, end-to-end tests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

# Satisfies the password policy; used for every test account.
PASSWORD = "Str0ng!Passw0rd"

MakeUser = Callable[..., Awaitable[dict[str, Any]]]
