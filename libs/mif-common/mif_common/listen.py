"""LISTEN on PostgreSQL channels for the life of a process, through database restarts.

A NOTIFY is a hint to look again, never the data: one sent while no LISTEN was in place is lost, so a
listener's `on_listening` (called at every (re)connection) makes it look once, and its owner keeps a
poll as the safety net. The outbox relay (a commit wrote events) and notifications' live stream (a user
has news) listen this way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import URL

from mif_common.cancellation import raise_if_cancelling
from mif_common.db import close_direct, connect_direct

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 2.0

Callback = Callable[[], None]


async def listen(
    url: str | URL,
    channels: Mapping[str, Callable[[str], None]],
    *,
    application_name: str,
    on_listening: Callback | None = None,
    on_lost: Callback | None = None,
) -> None:
    """Hold a connection of its own (`connect_direct`: not the pool's, and straight to PostgreSQL, since
    PgBouncer's transaction pooling gives no session to LISTEN on) listening on `channels`, each calling
    its function with the payload. Reconnects every RECONNECT_SECONDS after losing it; returns only
    when cancelled. `on_listening` runs once every channel is listened to, `on_lost` when the
    connection is gone."""
    while True:
        raise_if_cancelling()
        try:
            connection = await connect_direct(url, application_name=application_name)
            try:
                lost = asyncio.Event()
                connection.add_termination_listener(lambda *_, lost=lost: lost.set())
                for channel, callback in channels.items():
                    await connection.add_listener(channel, _payload_to(callback))
                if on_listening is not None:
                    on_listening()
                await lost.wait()
            finally:
                if on_lost is not None:
                    on_lost()
                await close_direct(connection)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "%s: LISTEN connection lost (%s); reconnecting in %.0fs", application_name, exc, RECONNECT_SECONDS
            )
            await asyncio.sleep(RECONNECT_SECONDS)


def _payload_to(callback: Callable[[str], None]) -> Callable[..., None]:
    """asyncpg calls a listener with (connection, pid, channel, payload)."""

    def on_notify(*args: Any) -> None:
        callback(str(args[-1]))

    return on_notify
