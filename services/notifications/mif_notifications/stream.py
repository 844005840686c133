"""The live stream: Server-Sent Events of a user's new notifications, across replicas.

A handler that creates notifications issues `pg_notify('mif_notifications_new', '<user>:<id>')` in its
transaction, so the signal leaves at commit and reaches every replica. Each process holds ONE LISTEN
connection (the hub) and wakes the streams of that user in this process; a woken stream reads the
user's notifications with an id above the last one it sent, so a signal is a hint, never the data,
and nothing is lost when one goes missing: the hub wakes every stream when its LISTEN connection is
(re)established, and each stream re-reads on its heartbeat too.

Event ids are notification ids. A client reconnecting with `Last-Event-ID` first gets what it missed
(ids above it, in order), then the live ones. A stream ends when its access token expires, when its
user is deactivated, and when the process shuts down (uvicorn waits for open responses before it
runs the lifespan shutdown, so the hub chains the SIGTERM/SIGINT handlers to learn about it first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mif_common.listen import listen
from mif_notifications import repository as repo
from mif_notifications.metrics import LIVE_STREAMS
from mif_notifications.schemas import NotificationOut
from mif_notifications.service import NEW_NOTIFICATION_CHANNEL, USER_REVOKED_CHANNEL

# Sent first: how long a client waits before reconnecting (ms), and a line that flushes the head.
STREAM_PREAMBLE = b"retry: 2000\n: connected\n\n"
HEARTBEAT = b": heartbeat\n\n"


class Subscription:
    """One open stream of one user in this process."""

    __slots__ = ("ended", "user_id", "wake")

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id
        self.wake = asyncio.Event()
        self.ended = False  # the user was deactivated, or the process is stopping


class NotificationHub:
    """The process's LISTEN connection, fanning signals out to in-process subscribers."""

    def __init__(
        self, engine: AsyncEngine, *, on_new: Callable[[], None] | None = None, listen_url: str | URL | None = None
    ) -> None:
        self.engine = engine
        # The LISTEN connection is its own, straight to PostgreSQL (the direct URL behind PgBouncer).
        self.listen_url = listen_url or engine.url
        self.on_new = on_new
        self.stopping = False
        self.listening = asyncio.Event()
        self._subscribers: dict[int, set[Subscription]] = {}

    def subscribe(self, user_id: int) -> Subscription:
        subscription = Subscription(user_id)
        subscription.ended = self.stopping
        self._subscribers.setdefault(user_id, set()).add(subscription)
        LIVE_STREAMS.inc()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.user_id)
        if subscribers is not None and subscription in subscribers:
            subscribers.discard(subscription)
            LIVE_STREAMS.dec()
            if not subscribers:
                del self._subscribers[subscription.user_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def wake_all(self) -> None:
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.wake.set()

    def stop(self) -> None:
        """End every stream (the process is shutting down)."""
        self.stopping = True
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.ended = True
        self.wake_all()

    def _on_new(self, payload: str) -> None:
        user, _, _ = payload.partition(":")
        with contextlib.suppress(ValueError):
            for subscription in self._subscribers.get(int(user), ()):
                subscription.wake.set()
        if self.on_new is not None:
            self.on_new()

    def _on_revoked(self, payload: str) -> None:
        with contextlib.suppress(ValueError):
            for subscription in self._subscribers.get(int(payload), ()):
                subscription.ended = True
                subscription.wake.set()

    def _on_listening(self) -> None:
        self.listening.set()
        # Signals sent while nobody listened are lost: everyone re-reads once.
        self.wake_all()
        if self.on_new is not None:
            self.on_new()

    async def run(self) -> None:
        """Hold the LISTEN connection; re-established after a database restart."""
        await listen(
            self.listen_url,
            {NEW_NOTIFICATION_CHANNEL: self._on_new, USER_REVOKED_CHANNEL: self._on_revoked},
            application_name="mif-notifications-stream",
            on_listening=self._on_listening,
            on_lost=self.listening.clear,
        )


def chain_shutdown_signals(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` (in the event loop) on SIGTERM/SIGINT before the handler already installed
    (uvicorn's). Returns the function that puts the previous handlers back. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        elif before in (None, signal.SIG_DFL):
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before if before is not None else signal.SIG_DFL)

    return restore


def format_event(notification_id: int, data: dict[str, Any]) -> bytes:
    """One SSE event: `id:` is the notification id, `data:` its JSON (one line)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"id: {notification_id}\ndata: {body}\n\n".encode()


async def event_stream(
    *,
    hub: NotificationHub,
    sessionmaker: async_sessionmaker[AsyncSession],
    user_id: int,
    last_event_id: int | None,
    expires_at: float,
    heartbeat: float,
    batch_size: int,
) -> AsyncIterator[bytes]:
    """The body of `GET /notifications/stream`: replay after `last_event_id` (if given), then live
    notifications as they come, heartbeats in between; ends at `expires_at` (epoch seconds)."""
    subscription = hub.subscribe(user_id)  # before the first read: nothing can slip in between
    try:
        yield STREAM_PREAMBLE
        last_id = last_event_id
        if last_id is None:
            async with sessionmaker() as session:
                last_id = await repo.last_notification_id(session, user_id=user_id)
        while True:
            subscription.wake.clear()
            async with sessionmaker() as session:
                rows = await repo.notifications_after(session, user_id=user_id, after_id=last_id, limit=batch_size)
                events = [(n.id, NotificationOut.model_validate(n).model_dump(mode="json")) for n in rows]
            for notification_id, data in events:
                yield format_event(notification_id, data)
                last_id = notification_id
            if len(events) == batch_size:
                continue
            remaining = expires_at - time.time()
            if subscription.ended or remaining <= 0:
                return
            try:
                async with asyncio.timeout(min(heartbeat, remaining)):
                    await subscription.wake.wait()
            except TimeoutError:
                if expires_at - time.time() > 0:
                    yield HEARTBEAT
    finally:
        hub.unsubscribe(subscription)
