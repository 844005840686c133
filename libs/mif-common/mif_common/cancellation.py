"""Cancellation that a library may have swallowed, checked by the loops that run for the life of the app."""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Stop if this task was asked to, even if a library swallowed the CancelledError (3.11's
    `asyncio.wait_for` does when its inner future completes at the same time): else `task.cancel()`
    followed by `await task` at shutdown could wait forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
