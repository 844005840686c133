"""The periodic-job runner: a pass every interval, a failed pass logged and the job kept alive, a full
batch followed at once by the next pass, and a clean stop when the task is cancelled."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from fastapi import FastAPI

from mif_common.jobs import PeriodicJob


class Passes:
    """A pass that records its calls, fails when told to and reports "more work" when told to."""

    def __init__(self, outcomes: list[str]) -> None:
        self.outcomes = outcomes  # per call: "ok", "more" or "fail"; then "ok" for ever
        self.calls = 0
        self.apps: list[FastAPI] = []
        self.called = asyncio.Event()

    async def __call__(self, app: FastAPI) -> bool:
        self.apps.append(app)
        outcome = self.outcomes[self.calls] if self.calls < len(self.outcomes) else "ok"
        self.calls += 1
        self.called.set()
        if outcome == "fail":
            raise RuntimeError("this pass failed")
        return outcome == "more"

    async def reach(self, calls: int) -> None:
        while self.calls < calls:
            self.called.clear()
            await self.called.wait()


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_the_first_pass_runs_at_once() -> None:
    passes = Passes([])
    task = asyncio.create_task(PeriodicJob("probe", 60, passes).run_forever(FastAPI()))
    await asyncio.wait_for(passes.reach(1), 2)
    await stop(task)


async def test_then_a_pass_every_interval() -> None:
    app, passes = FastAPI(), Passes([])
    task = asyncio.create_task(PeriodicJob("probe", 0.02, passes).run_forever(app))
    await asyncio.wait_for(passes.reach(3), 2)
    await stop(task)
    assert passes.apps == [app] * passes.calls


async def test_a_failed_pass_is_logged_and_the_job_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    passes = Passes(["fail", "fail", "ok"])
    task = asyncio.create_task(PeriodicJob("probe", 0.01, passes).run_forever(FastAPI()))
    await asyncio.wait_for(passes.reach(4), 2)
    await stop(task)
    failures = [r for r in caplog.records if r.getMessage().startswith("periodic job probe failed")]
    assert len(failures) == 2 and all(r.exc_info for r in failures)


async def test_a_full_batch_runs_the_next_pass_at_once() -> None:
    passes = Passes(["more", "more", "more"])
    task = asyncio.create_task(PeriodicJob("probe", 60, passes).run_forever(FastAPI()))
    await asyncio.wait_for(passes.reach(4), 2)  # three full batches, then the one finding less
    await asyncio.sleep(0.05)
    assert passes.calls == 4  # then it waits for the interval
    await stop(task)


async def test_cancelled_during_a_pass() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(app: FastAPI) -> bool:
        started.set()
        await release.wait()
        return False

    task = asyncio.create_task(PeriodicJob("probe", 60, slow).run_forever(FastAPI()))
    await started.wait()
    await stop(task)


async def test_stops_even_when_a_pass_swallowed_the_cancellation() -> None:
    """A library may swallow the CancelledError of a cancelled task: the job still stops."""
    started = asyncio.Event()

    async def swallowing(app: FastAPI) -> bool:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)
        return True

    task = asyncio.create_task(PeriodicJob("probe", 60, swallowing).run_forever(FastAPI()))
    await started.wait()
    task.cancel()
    async with asyncio.timeout(2):
        with pytest.raises(asyncio.CancelledError):
            await task
