"""The proxy: route → policy → token → rate limits → body → upstream → response, as plain ASGI.

Kept as a raw ASGI callable (not a FastAPI endpoint) because it sits on the path of every API call:
no request parsing it does not need, response bodies passed through as ASGI messages. Small bodies
are read in one piece; uploads and large or unsized responses are streamed chunk by chunk, never
held whole in memory. A streamed response stops as soon as the client goes away.

Longer than our usual ~450 lines on purpose: the request's whole path (admission, body, upstream,
answer) reads top to bottom in one place, and the helpers it calls on every request stay beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mif_common.auth.principal import Principal
from mif_common.auth.tokens import bearer_token
from mif_common.body_timeout import BodyTimeout
from mif_common.errors import ServiceUnavailable, Unauthorized, problem_response
from mif_common.request_context import current_request_id, new_request_id
from mif_gateway.config import GatewaySettings
from mif_gateway.forwarded import client_address, parse_networks
from mif_gateway.jwt_check import TokenChecker
from mif_gateway.policy import AccessKind, Policy, Rule
from mif_gateway.ratelimit import RateLimits, retry_after_header
from mif_gateway.routes import service_for
from mif_gateway.upstream import (
    Body,
    UpstreamBodyError,
    UpstreamClient,
    UpstreamDisconnected,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnavailable,
)

logger = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)
# Identity a client must never be able to assert; services read identity from the token only.
IDENTITY_HEADERS = frozenset({b"x-user-id", b"x-user-role", b"x-client-id", b"x-forwarded-user", b"x-principal"})
IDENTITY_PREFIX = b"x-mif-"
# Dropped from requests and set by the gateway (or the HTTP client) instead.
_REQUEST_DROP = (
    HOP_BY_HOP
    | IDENTITY_HEADERS
    | {
        b"host",
        b"content-length",
        b"expect",
        b"x-request-id",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
        b"x-real-ip",
    }
)
# Dropped from responses: hop-by-hop, and what this server sets itself (Date, Server, CORS, request id).
_RESPONSE_DROP = HOP_BY_HOP | {b"server", b"date", b"x-request-id"}
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_NO_BODY_STATUS = frozenset({204, 304})
_PATH_SAFE = "/:@!$&'()*+,;=~"


def is_buffered_type(content_type: str) -> bool:
    """JSON, forms and text are buffered (and size-limited); anything else is streamed."""
    main = content_type.split(";", 1)[0].strip().lower()
    return (
        main in ("", "application/json", "application/x-www-form-urlencoded")
        or main.endswith("+json")
        or main.startswith("text/")
    )


def valid_path(path: str) -> bool:
    """No empty, `.` or `..` segments and no control characters (what we check is what we forward)."""
    if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
        return False
    return path.isprintable()


class ClientGone(Exception):
    """The client disconnected while we were reading its request."""


@dataclass(slots=True)
class _RequestBody:
    """Progress of reading the client's body (the disconnect watcher may only read after it)."""

    finished: bool = True
    client_gone: bool = False
    # The client's body stopped arriving mid-stream (mif_common.body_timeout): the upstream request is abandoned
    # and the client answered 408, whatever the upstream client made of the broken-off body.
    stalled: BodyTimeout | None = None


@dataclass(slots=True)
class _Refusal:
    status: int
    detail: str
    headers: Mapping[str, str] | None = None


class Gateway:
    """Everything the proxy needs, built in the lifespan and kept on `app.state.gateway`."""

    def __init__(
        self,
        *,
        settings: GatewaySettings,
        policy: Policy,
        tokens: TokenChecker,
        limits: RateLimits,
        upstream: UpstreamClient,
        upstream_urls: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        self.policy = policy
        self.tokens = tokens
        self.limits = limits
        self.upstream = upstream
        self.upstream_urls = dict(upstream_urls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        request_id: str = scope.get("state", {}).get("request_id") or current_request_id() or new_request_id()

        service = service_for(path) if valid_path(path) else None
        rule = self.policy.match(method, path) if service is not None else None
        if rule is None or rule.access.kind is AccessKind.internal:
            allowed = self.policy.allowed_methods(path) if rule is None and service is not None else []
            if allowed:
                await self._problem(
                    scope, receive, send, 405, f"{method} is not allowed on {path}.", {"Allow": ", ".join(allowed)}
                )
            else:
                await self._problem(scope, receive, send, 404, f"No resource at {path}.")
            return
        assert service is not None
        scope["route"] = rule  # metrics label by policy pattern, not raw path

        # One pass over the request headers: what we need, and what we forward.
        authorization = content_type = content_length = host = forwarded_for = None
        chunked = False
        connection_tokens: list[bytes] = []
        forward: list[tuple[str, str]] = []
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                forward.append(("authorization", authorization))
                continue
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name in _REQUEST_DROP or name.startswith(IDENTITY_PREFIX):
                if name == b"content-length":
                    content_length = value
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"x-forwarded-for":
                    seen = value.decode("latin-1")
                    forwarded_for = f"{forwarded_for},{seen}" if forwarded_for else seen
                elif name == b"host":
                    host = value.decode("latin-1")
                elif name == b"connection":
                    connection_tokens.extend(t.strip().lower() for t in value.split(b","))
                continue
            forward.append((name.decode("latin-1"), value.decode("latin-1")))
        if connection_tokens:
            extra = {t.decode("latin-1") for t in connection_tokens} - {"close", "keep-alive"}
            if extra:
                forward = [(n, v) for n, v in forward if n not in extra]

        client = scope.get("client")
        client_ip = client_address(client[0] if client else None, forwarded_for, self.trusted_proxies)

        refusal = await self._admit(rule, authorization, client_ip)
        if refusal is not None:
            await self._problem(scope, receive, send, refusal.status, refusal.detail, refusal.headers)
            return

        # Body: none, buffered (size-limited) or streamed.
        state = _RequestBody()
        body: Body = None
        account: str | None = None  # the account a sign-in names
        length: int | None = None
        if content_length is not None:
            try:
                length = int(content_length)
            except ValueError:
                await self._problem(scope, receive, send, 400, "The Content-Length header is not a number.")
                return
        has_body = chunked or (length is not None and length > 0)
        streamed = has_body and not rule.login and not is_buffered_type(content_type or "")
        if has_body and streamed:
            if length is not None and length > self.settings.max_streamed_body_bytes:
                await self._too_large(scope, receive, send, self.settings.max_streamed_body_bytes)
                return
            state.finished = False
            body = self._stream_body(receive, state)
            if length is not None:
                forward.append(("content-length", str(length)))
        elif has_body:
            limit = self.settings.max_buffered_body_bytes
            if length is not None and length > limit:
                await self._too_large(scope, receive, send, limit)
                return
            try:
                buffered = await _read_body(receive, limit)
            except ClientGone:
                return
            if buffered is None:
                await self._too_large(scope, receive, send, limit)
                return
            body = buffered
            if rule.login and self.limits.enabled:  # the account only matters to the sign-in limits
                account = await login_account(buffered, content_type or "")
                refusal = self._admit_login_account(account, client_ip)
                if refusal is not None:
                    await self._problem(scope, receive, send, refusal.status, refusal.detail, refusal.headers)
                    return

        forward.append(("x-request-id", request_id))
        # The gateway is the trust boundary: services get the one client address it determined
        # (mif_gateway.forwarded: the peer, or behind a trusted ingress its entry), never a client-made chain.
        forward.append(("x-forwarded-for", client_ip))
        forward.append(("x-forwarded-proto", scope.get("scheme", "http")))
        if host:
            forward.append(("x-forwarded-host", host))

        url = self.upstream_urls[service] + quote(path, safe=_PATH_SAFE)
        query: bytes = scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")

        response = await self._send_upstream(scope, receive, send, service, method, url, forward, body, state)
        if response is None:
            return
        if rule.login and response.status == 401:
            self._count_failed_login(client_ip, account)
        try:
            await self._respond(response, method, receive, send, state)
        finally:
            await response.close()

    # --- admission ---------------------------------------------------------------------------------

    async def _admit(self, rule: Rule, authorization: str | None, client_ip: str) -> _Refusal | None:
        """Token, role and general/login-per-IP rate limits; None when the request may go on."""
        principal: Principal | None = None
        if rule.access.kind is not AccessKind.public:
            token = bearer_token(authorization)
            if token is None:
                return self._limit_anonymous(client_ip) or _Refusal(
                    401, "A valid access token is required.", _WWW_AUTHENTICATE
                )
            try:
                principal = await self.tokens.principal(token)
            except Unauthorized as exc:
                return self._limit_anonymous(client_ip) or _Refusal(401, exc.detail, exc.headers)
            except ServiceUnavailable as exc:  # auth cannot say who it is, or which keys sign tokens
                return _Refusal(503, exc.detail, exc.headers)
            if not rule.access.allows(principal.role):
                return _Refusal(403, f"This action needs one of these {rule.access.describe()}.")
        limits = self.limits
        if not limits.enabled:
            return None
        if principal is not None:
            wait = limits.user.hit(f"u:{principal.user_id}")
            if wait is not None:
                return _Refusal(
                    429,
                    f"Too many requests for this account; retry in {retry_after_header(wait)} s.",
                    {"Retry-After": retry_after_header(wait)},
                )
        else:
            refusal = self._limit_anonymous(client_ip)
            if refusal is not None:
                return refusal
        if rule.login:
            wait = limits.login_ip.wait(client_ip)
            if wait is None:
                wait = limits.login_attempts_ip.hit(client_ip)
            if wait is not None:
                return _Refusal(
                    429,
                    f"Too many sign-in attempts from this address; retry in {retry_after_header(wait)} s.",
                    {"Retry-After": retry_after_header(wait)},
                )
        return None

    def _limit_anonymous(self, client_ip: str) -> _Refusal | None:
        if not self.limits.enabled:
            return None
        wait = self.limits.anonymous.hit(f"ip:{client_ip}")
        if wait is None:
            return None
        return _Refusal(
            429,
            f"Too many requests from this address; retry in {retry_after_header(wait)} s.",
            {"Retry-After": retry_after_header(wait)},
        )

    def _admit_login_account(self, account: str | None, client_ip: str) -> _Refusal | None:
        """Failures on this account FROM THIS ADDRESS: someone guessing elsewhere never locks the owner out."""
        if not self.limits.enabled or account is None:
            return None  # without an account auth answers the missing field
        wait = self.limits.login_account.wait(login_account_key(account, client_ip))
        if wait is None:
            return None
        return _Refusal(
            429,
            f"Too many sign-in attempts for this account from this address; retry in {retry_after_header(wait)} s.",
            {"Retry-After": retry_after_header(wait)},
        )

    def _count_failed_login(self, client_ip: str, account: str | None) -> None:
        """Auth refused the credentials: one failure for the address, and for the account from that address."""
        if not self.limits.enabled:
            return
        self.limits.login_ip.count(client_ip)
        if account is not None:
            self.limits.login_account.count(login_account_key(account, client_ip))

    # --- upstream ----------------------------------------------------------------------------------

    async def _send_upstream(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        service: str,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: Body,
        state: _RequestBody,
    ) -> UpstreamResponse | None:
        replayable = body is None or isinstance(body, bytes)
        attempts = 2 if replayable and method in _IDEMPOTENT else 1
        # An upload's response head only comes after the whole body: bound it by the idle timeout.
        head_timeout = self.settings.upstream_timeout if replayable else None
        for attempt in range(attempts):
            try:
                return await self._request(method, url, headers, body, head_timeout, state)
            except UpstreamDisconnected as exc:
                if state.client_gone:
                    return None
                if attempt + 1 < attempts:
                    continue
                logger.warning("%s %s: %s closed the connection: %s", method, url, service, exc)
                await self._problem(
                    scope, receive, send, 502, f"The {service} service closed the connection without answering."
                )
            except UpstreamUnavailable as exc:
                logger.warning("%s %s: %s unavailable: %s", method, url, service, exc)
                await self._problem(scope, receive, send, 503, f"The {service} service is unavailable.", _RETRY_SOON)
            except UpstreamTimeout:
                logger.warning("%s %s: %s did not answer in time", method, url, service)
                await self._problem(scope, receive, send, 504, f"The {service} service did not answer in time.")
            except ClientGone:
                return None
            except Exception:
                if state.client_gone:
                    return None
                raise
            return None
        return None

    async def _request(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: Body,
        head_timeout: float | None,
        state: _RequestBody,
    ) -> UpstreamResponse:
        try:
            return await self.upstream.request(method, url, headers, body, head_timeout=head_timeout)
        except Exception as exc:
            if state.stalled is not None:
                raise state.stalled from exc
            raise

    async def _respond(
        self, response: UpstreamResponse, method: str, receive: Receive, send: Send, state: _RequestBody
    ) -> None:
        headers: list[tuple[bytes, bytes]] = []
        for raw_name, value in response.raw_headers:
            name = raw_name.lower()
            if name in _RESPONSE_DROP or name.startswith(b"access-control-"):
                continue
            headers.append((name, value))
        status = response.status
        length = response.content_length
        if (
            method == "HEAD"
            or status in _NO_BODY_STATUS
            or (length is not None and length <= self.settings.response_buffer_bytes)
        ):
            try:
                content = await response.read()
            except UpstreamBodyError as exc:
                logger.warning("upstream body broke off: %s", exc)
                await _send_problem(send, 502, "The service's answer broke off.")
                return
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": content, "more_body": False})
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if not state.finished:
            await _pump(response, send)
            return
        pump = asyncio.create_task(_pump(response, send))
        watcher = asyncio.create_task(_wait_for_disconnect(receive))
        try:
            done, _ = await asyncio.wait((pump, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watcher):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if pump in done:
            pump.result()  # an upstream failure mid-stream aborts the client connection

    # --- request body ------------------------------------------------------------------------------

    @staticmethod
    async def _stream_body(receive: Receive, state: _RequestBody) -> AsyncIterator[bytes]:
        while True:
            try:
                message = await receive()
            except BodyTimeout as exc:
                state.stalled = exc
                raise
            if message["type"] == "http.disconnect":
                state.client_gone = True
                raise ClientGone()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                state.finished = True
                return

    # --- answers -----------------------------------------------------------------------------------

    async def _problem(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        response = problem_response(status, detail, instance=scope["path"], headers=headers)
        await response(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await self._problem(
            scope, receive, send, 413, f"The request body is larger than the {_human_size(limit)} accepted here."
        )


_WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="mif"'}
# A service that is down (restarting, being deployed) is usually back within seconds.
_RETRY_SOON = {"Retry-After": "5"}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None past `limit` bytes (reading stops there)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _pump(response: UpstreamResponse, send: Send) -> None:
    try:
        async for chunk in response.chunks():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except UpstreamBodyError as exc:
        logger.warning("upstream body broke off mid-stream; aborting the client connection: %s", exc)
        raise
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _send_problem(send: Send, status: int, detail: str) -> None:
    response = problem_response(status, detail)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


def _human_size(size: int) -> str:
    if size >= 1_048_576 and size % 1_048_576 == 0:
        return f"{size // 1_048_576} MB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} bytes"


def login_account_key(account: str, client_ip: str) -> str:
    """The key of the per-(account, address) failure limiter."""
    return f"{account}|ip:{client_ip}"


async def login_account(body: bytes, content_type: str) -> str | None:
    """The account a login attempt names (`username` or `email` field), normalised, or None."""
    main = content_type.split(";", 1)[0].strip().lower()
    value: object = None
    try:
        if main == "application/x-www-form-urlencoded":
            fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=50)
            found = fields.get("username") or fields.get("email")
            value = found[0] if found else None
        elif main == "multipart/form-data":

            async def once() -> AsyncGenerator[bytes, None]:
                yield body

            parser = MultiPartParser(Headers({"content-type": content_type}), once(), max_files=0, max_fields=50)
            form = await parser.parse()
            value = form.get("username") or form.get("email")
        elif main == "application/json" or main.endswith("+json"):
            data = json.loads(body)
            if isinstance(data, dict):
                value = data.get("username") or data.get("email")
    except (ValueError, MultiPartException):
        return None
    if not isinstance(value, str) or not value.strip():
        return None
    return "acct:" + value.strip().lower()[:320]


class ApiFastPath:
    """Innermost middleware: `/api/*` goes straight to the proxy, skipping FastAPI's exception
    middleware, exit stack and router (a measurable share of the gateway's added latency). Errors
    still end as problem+json through the outermost error middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            gateway: Gateway = scope["app"].state.gateway
            await gateway(scope, receive, send)
            return
        await self.app(scope, receive, send)
