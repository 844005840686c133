"""`mif_common.listen`: payloads reach each channel's function, `on_listening` runs once LISTEN is in
place (and again after a reconnection), `on_lost` when the connection is gone, and a cancelled
listener closes its connection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from mif_common.listen import listen
from mif_common.testing.plugin import TestDatabase

APPLICATION = "mif-test-listen-helper"
BACKENDS = "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'"


class Seen:
    def __init__(self) -> None:
        self.payloads: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.listening = asyncio.Event()
        self.lost = asyncio.Event()
        self.connections = 0

    def on_listening(self) -> None:
        self.connections += 1
        self.lost.clear()
        self.listening.set()

    def on_lost(self) -> None:
        self.listening.clear()
        self.lost.set()


async def test_listens_reconnects_and_closes(mif_database: TestDatabase) -> None:
    seen = Seen()
    admin = await asyncpg.connect(mif_database.dsn)
    task = asyncio.create_task(
        listen(
            mif_database.url_for("auth"),
            {
                "mif_test_a": lambda payload: seen.payloads.put_nowait(("a", payload)),
                "mif_test_b": lambda payload: seen.payloads.put_nowait(("b", payload)),
            },
            application_name=APPLICATION,
            on_listening=seen.on_listening,
            on_lost=seen.on_lost,
        )
    )
    try:
        await asyncio.wait_for(seen.listening.wait(), 10)
        await admin.execute("SELECT pg_notify('mif_test_a', '1:2'), pg_notify('mif_test_b', '7')")
        assert await asyncio.wait_for(seen.payloads.get(), 5) == ("a", "1:2")
        assert await asyncio.wait_for(seen.payloads.get(), 5) == ("b", "7")

        # The server closes the connection (a restart, a failover): lost, then listening again.
        [pid] = [row["pid"] for row in await admin.fetch(BACKENDS, APPLICATION)]
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await asyncio.wait_for(seen.lost.wait(), 5)
        await asyncio.wait_for(seen.listening.wait(), 10)
        assert seen.connections == 2
        await admin.execute("SELECT pg_notify('mif_test_b', 'again')")
        assert await asyncio.wait_for(seen.payloads.get(), 5) == ("b", "again")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    for _ in range(100):  # closed with the listener
        if not await admin.fetch(BACKENDS, APPLICATION):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the LISTEN connection outlived its listener")
    await admin.close()
