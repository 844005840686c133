"""Request id and event causation carried through a request or a consumed message."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from contextvars import ContextVar

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

request_id_var: ContextVar[str | None] = ContextVar("mif_request_id", default=None)
# The path of the request being served: the `instance` of a problem built without one.
request_path_var: ContextVar[str | None] = ContextVar("mif_request_path", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("mif_causation_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str:
    """Keep a caller's id when it is safe to log and forward, else mint one."""
    if value and _VALID_REQUEST_ID.match(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    return request_id_var.get()


def current_request_path() -> str | None:
    return request_path_var.get()


class RequestIdMiddleware:
    """Pure ASGI: reads or mints `X-Request-ID`, exposes it to logs and events, echoes it back; stamps
    `X-MIF-Version` (which build answered: mif_common.version) unless the answer already carries one (an
    answer the gateway relays keeps the service's)."""

    def __init__(self, app: ASGIApp, *, version: str | None = None) -> None:
        self.app = app
        self.version = version.encode("latin-1") if version else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = valid_request_id(incoming)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        path_token = request_path_var.set(scope.get("path"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("latin-1")))
                if self.version is not None and not any(k.lower() == b"x-mif-version" for k, _ in headers):
                    headers.append((b"x-mif-version", self.version))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_path_var.reset(path_token)
            request_id_var.reset(token)


class StripTrailingSlashMiddleware:
    """Serve `/x/` as `/x` so every path works with and without the slash, without redirects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw = scope.get("raw_path")
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


def client_ip(headers: Mapping[str, str], peer: str | None) -> str:
    """The caller's address: the hop our gateway appended to X-Forwarded-For, else the TCP peer.

    Services only take traffic from the gateway (NetworkPolicy / compose network), and the gateway
    appends the address it saw, so the last entry is the one we can trust.
    """
    forwarded = headers.get("x-forwarded-for")
    if forwarded:
        last = forwarded.split(",")[-1].strip()
        if last:
            return last[:64]
    return (peer or "unknown")[:64]


class BodySizeLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413 as soon as the limit is crossed (declared or streamed)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        from mif_common.errors import problem_response

        response = problem_response(
            413,
            f"The request body is larger than the {self.max_bytes} bytes this endpoint accepts.",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing re-raises it instead of answering 400."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body is larger than the {max_bytes} bytes this endpoint accepts.")
