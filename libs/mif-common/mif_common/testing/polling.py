"""`eventually`: the one way tests wait for something that happens elsewhere (another task, process or
service) instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, what: str | None = None, within: float = 10.0, interval: float = 0.05
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T], *, what: str | None = None, within: float = 10.0, interval: float = 0.05
) -> T: ...


async def eventually(
    check: Callable[[], Any], *, what: str | None = None, within: float = 10.0, interval: float = 0.05
) -> Any:
    """Call `check` (sync or async) until it returns something truthy, and return that. After `within`
    seconds, an AssertionError naming `what` (default: the check's name) and showing the last value,
    which usually says why the wait failed."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            name = what or getattr(check, "__qualname__", repr(check))
            raise AssertionError(f"timed out after {within:g}s waiting for {name}; last value: {value!r}")
        await asyncio.sleep(interval)
