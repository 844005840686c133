"""Slow request bodies refused, the same way in every service and at the gateway.

`BodyTimeoutMiddleware` answers 408 problem+json when a request body stops arriving: a client that
announces a Content-Length and withholds the bytes would otherwise hold a connection and a worker for
ever. Each chunk must come within `idle_seconds` and the whole body within `total_seconds`.

`mif_common.guard.add_request_guards` installs it around the request guard.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def _expects_body(scope: Scope) -> tuple[bool, int | None, bytes | None]:
    """(a body may follow, its declared length, the Content-Type)."""
    length: int | None = None
    chunked = False
    content_type: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"content-type":
            content_type = value
    if chunked:
        return True, None, content_type
    if length is not None:
        return length > 0, length, content_type
    # HTTP/1.x: neither header means no body. Other protocols may stream one without a length.
    return scope.get("http_version", "1.1") not in ("1.0", "1.1"), None, content_type


class BodyTimeout(HTTPException):
    """A request body stopped arriving. An HTTPException, so that FastAPI's body parsing lets it through
    (its error handlers then answer 408 like this middleware does when nothing else did)."""

    def __init__(self, detail: str) -> None:
        super().__init__(408, detail, headers={"Connection": "close"})


class _BodyClock:
    """One request's body read: which task waits in `receive` since when, and whether it was stopped."""

    __slots__ = ("deadline", "since", "stalled", "task")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.since = 0.0
        self.task: asyncio.Task[Any] | None = None
        self.stalled = False


class BodyTimeoutMiddleware:
    """Pure ASGI: see the module docstring. Once the body is complete, `receive` is no longer timed (it
    then only waits for the client to disconnect, e.g. during a streamed response).

    No timer per request: a waiting read is put in a set, and one sweep (every `idle_seconds / 4`, at
    most every second, only while some read waits) cancels the reads that waited too long; the read then
    raises `BodyTimeout`. A per-read `asyncio.timeout` costs ~10 µs a request, this well under 1 µs."""

    def __init__(self, app: ASGIApp, *, idle_seconds: float, total_seconds: float) -> None:
        self.app = app
        self.idle_seconds = idle_seconds
        self.total_seconds = total_seconds
        self._resolution = min(1.0, idle_seconds / 4)
        self._waiting: set[_BodyClock] = set()
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _expects_body(scope)[0]:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        clock = _BodyClock(loop.time() + self.total_seconds)
        finished = False
        started = False

        async def timed_receive() -> Message:
            nonlocal finished
            if finished:
                return await receive()
            now = loop.time()
            if now >= clock.deadline:
                raise self._timeout(whole=True)
            clock.since = now
            clock.task = task = asyncio.current_task()
            self._waiting.add(clock)
            self._sweep_later(loop)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if clock.stalled and task is not None and task.uncancel() == 0:
                    raise self._timeout(whole=loop.time() >= clock.deadline) from None
                raise
            finally:
                self._waiting.discard(clock)
            if message["type"] != "http.request" or not message.get("more_body", False):
                finished = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except BodyTimeout as exc:
            if started:
                raise  # an answer is already under way: the server aborts the connection
            logger.warning("%s %s: %s", scope.get("method"), scope.get("path"), exc.detail)
            await self._answer(scope, send, exc)

    def _sweep_later(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is not loop:  # a new event loop (tests): forget the old one's state
            self._loop, self._sweep_handle = loop, None
            self._waiting = {c for c in self._waiting if c.task is not None and c.task.get_loop() is loop}
        if self._sweep_handle is None:
            self._sweep_handle = loop.call_later(self._resolution, self._sweep)

    def _sweep(self) -> None:
        self._sweep_handle = None
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        now = loop.time()
        for clock in list(self._waiting):
            if now - clock.since >= self.idle_seconds or now >= clock.deadline:
                self._waiting.discard(clock)
                if clock.task is not None and not clock.task.done():
                    clock.stalled = True
                    clock.task.cancel()
        if self._waiting:
            self._sweep_handle = loop.call_later(self._resolution, self._sweep)

    def _timeout(self, *, whole: bool) -> BodyTimeout:
        if whole:
            return BodyTimeout(
                f"The request body did not arrive within {self.total_seconds:g} s; the request was abandoned."
            )
        return BodyTimeout(
            f"The request body stopped arriving: nothing came for {self.idle_seconds:g} s; the request was abandoned."
        )

    @staticmethod
    async def _answer(scope: Scope, send: Send, exc: BodyTimeout) -> None:
        from mif_common.errors import problem_response

        response = problem_response(408, exc.detail, instance=scope.get("path"), headers=exc.headers)

        async def nothing() -> Message:  # the body is what never came: don't wait for it again
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)
