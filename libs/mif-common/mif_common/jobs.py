"""Periodic jobs: one pass of a service's housekeeping, run every interval for the life of the app.

A service lists its jobs in `ServiceParts.periodic_jobs` (built by its own `jobs.py`); the app starts
each in the lifespan, in every replica (a pass must be safe to run on several at once: rows claimed with
`SKIP LOCKED`, idempotent deletes) and cancels it at shutdown. A failed pass is logged and the next one
retries at the next interval: whatever it wrote half-way in an uncommitted transaction is rolled back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI

from mif_common.cancellation import raise_if_cancelling

logger = logging.getLogger(__name__)

# One pass; True when it stopped with work left (a full batch), to run the next one at once.
Pass = Callable[[FastAPI], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    name: str
    interval: float  # seconds between the end of a pass and the start of the next
    run: Pass

    async def run_forever(self, app: FastAPI) -> None:
        """Pass after pass until cancelled; the first pass runs at once."""
        while True:
            raise_if_cancelling()
            more = False
            try:
                more = await self.run(app)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("periodic job %s failed; retrying in %.0fs", self.name, self.interval)
            await asyncio.sleep(0 if more else self.interval)
