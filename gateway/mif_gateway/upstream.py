"""The HTTP client that talks to the services, behind one small interface so it can be swapped.

Two implementations: aiohttp (default) and httpx2 (its transport only, without the client layer:
no cookie jar shared between callers, no redirects, no default headers). `bench/gateway_overhead.py`
measures both side by side; the faster is the default (`MIF_GATEWAY_UPSTREAM_CLIENT`). Both pool
keep-alive connections, never decompress (bytes pass through as the service sent them) and stream
bodies both ways.

Failures are reduced to four exceptions the proxy maps to answers: the service cannot be reached
(503), it did not answer in time (504), it dropped the connection before answering (502, retried
once for idempotent requests), or a body broke off mid-stream (the client connection is aborted).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

import aiohttp
from yarl import URL

from mif_gateway.config import GatewaySettings

if TYPE_CHECKING:
    import httpx2

Body = bytes | AsyncIterable[bytes] | None
HeaderList = Sequence[tuple[str, str]]


class UpstreamError(Exception):
    """Base of the upstream failures."""


class UpstreamUnavailable(UpstreamError):
    """Nothing accepts connections there (refused, unresolvable, connect timeout)."""


class UpstreamTimeout(UpstreamError):
    """Connected, but no response head within `upstream_timeout`."""


class UpstreamDisconnected(UpstreamError):
    """The connection broke before a response head arrived (e.g. a stale keep-alive connection)."""


class UpstreamBodyError(UpstreamError):
    """A response body broke off or stalled past the idle timeout while streaming."""


class UpstreamResponse(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def raw_headers(self) -> Sequence[tuple[bytes, bytes]]:
        """Header pairs as received (names not normalised)."""
        ...

    @property
    def content_length(self) -> int | None: ...

    async def read(self) -> bytes: ...

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class UpstreamClient(Protocol):
    name: str

    async def request(
        self, method: str, url: str, headers: HeaderList, body: Body, *, head_timeout: float | None
    ) -> UpstreamResponse:
        """Send a request; returns once the response head arrived (`head_timeout` None: no limit)."""
        ...

    async def aclose(self) -> None: ...


# --- aiohttp -----------------------------------------------------------------------------------------


class _AiohttpResponse:
    __slots__ = ("_response", "content_length", "raw_headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.raw_headers = response.raw_headers
        self.content_length = response.content_length

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamBodyError(str(exc) or type(exc).__name__) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamBodyError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        # Back to the pool when fully read; a half-read body closes its connection.
        self._response.release()


class AiohttpUpstream:
    name = "aiohttp"

    def __init__(self, settings: GatewaySettings) -> None:
        connector = aiohttp.TCPConnector(
            limit=settings.upstream_pool_size,
            limit_per_host=0,
            # Shorter than uvicorn's keep-alive (5 s) so we never reuse a connection it is closing.
            keepalive_timeout=settings.upstream_keepalive_seconds,
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=settings.upstream_connect_timeout,
                sock_connect=settings.upstream_connect_timeout,
                sock_read=settings.upstream_stream_idle_timeout,
            ),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            read_bufsize=2**18,
        )

    async def request(
        self, method: str, url: str, headers: HeaderList, body: Body, *, head_timeout: float | None
    ) -> UpstreamResponse:
        try:
            async with asyncio.timeout(head_timeout):
                response = await self._session.request(
                    method, URL(url, encoded=True), headers=list(headers), data=body, allow_redirects=False
                )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        except TimeoutError as exc:  # ours (no head in time) or the socket's read timeout
            raise UpstreamTimeout(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamDisconnected(str(exc) or type(exc).__name__) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()


# --- httpx2 ------------------------------------------------------------------------------------------


class _Httpx2Response:
    __slots__ = ("_response", "content_length", "raw_headers", "status")

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.raw_headers = response.headers.raw
        length = response.headers.get("content-length")
        self.content_length = int(length) if length and length.isdigit() else None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        import httpx2

        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx2.HTTPError as exc:
            raise UpstreamBodyError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        await self._response.aclose()


class Httpx2Upstream:
    name = "httpx2"

    def __init__(self, settings: GatewaySettings) -> None:
        import httpx2  # optional dependency: only needed when this client is selected

        self._timeouts = {
            "connect": settings.upstream_connect_timeout,
            "read": settings.upstream_stream_idle_timeout,
            "write": settings.upstream_stream_idle_timeout,
            "pool": settings.upstream_connect_timeout,
        }
        self._transport = httpx2.AsyncHTTPTransport(
            limits=httpx2.Limits(
                max_connections=settings.upstream_pool_size,
                max_keepalive_connections=settings.upstream_pool_size,
                keepalive_expiry=settings.upstream_keepalive_seconds,
            ),
            trust_env=False,
        )

    async def request(
        self, method: str, url: str, headers: HeaderList, body: Body, *, head_timeout: float | None
    ) -> UpstreamResponse:
        import httpx2

        request = httpx2.Request(
            method, url, headers=list(headers), content=body, extensions={"timeout": self._timeouts}
        )
        try:
            async with asyncio.timeout(head_timeout):
                response = await self._transport.handle_async_request(request)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            raise UpstreamUnavailable(str(exc)) from exc
        except (TimeoutError, httpx2.TimeoutException) as exc:
            raise UpstreamTimeout(str(exc)) from exc
        except httpx2.HTTPError as exc:
            raise UpstreamDisconnected(str(exc) or type(exc).__name__) from exc
        return _Httpx2Response(response)

    async def aclose(self) -> None:
        await self._transport.aclose()


def make_upstream_client(settings: GatewaySettings) -> UpstreamClient:
    if settings.upstream_client == "httpx2":
        return Httpx2Upstream(settings)
    return AiohttpUpstream(settings)
