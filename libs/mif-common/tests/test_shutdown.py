"""A stopping process never waits forever on one step of its shutdown, and names the step that held it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mif_common import app as app_module


async def test_a_hung_step_is_left_behind_and_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_module, "SHUTDOWN_STEP_SECONDS", 0.2)
    hung = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="mif_common.app")
    started = asyncio.get_running_loop().time()
    await app_module._shutdown_step("broker", hung.wait())
    assert asyncio.get_running_loop().time() - started < 1.0
    assert "shutdown: broker did not finish in 0.2s; left behind" in caplog.text


async def test_a_failing_step_does_not_stop_the_next(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise ConnectionResetError("gone")

    done: list[str] = []

    async def next_step() -> None:
        done.append("engine")

    caplog.set_level(logging.WARNING, logger="mif_common.app")
    await app_module._shutdown_step("http client", broken())
    await app_module._shutdown_step("database engine", next_step())
    assert done == ["engine"]
    assert "shutdown: http client failed" in caplog.text


async def test_a_slow_step_is_logged_with_its_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app_module, "SLOW_SHUTDOWN_STEP_SECONDS", 0.05)
    caplog.set_level(logging.WARNING, logger="mif_common.app")
    await app_module._shutdown_step("consumer", asyncio.sleep(0.1))
    assert "shutdown: consumer took 0.1s" in caplog.text
