"""Business errors and their problem+json (RFC 9457) answers.

Services raise a subclass of `DomainError` with a sentence a user can act on; the handlers here turn
every error path (business, validation, HTTP, unexpected) into `application/problem+json`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mif_common.request_context import REQUEST_ID_HEADER, current_request_id, current_request_path, new_request_id

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://mif.ma/problems/"
logger = logging.getLogger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    408: "Request timeout",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


class DomainError(Exception):
    """A failure a client can understand and act on."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(DomainError):
    pass


class Unauthorized(DomainError):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "A valid access token is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="mif"'})
        super().__init__(detail, **kw)


class Forbidden(DomainError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(DomainError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(DomainError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(DomainError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(DomainError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(DomainError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unprocessable(DomainError):
    status, slug, title = 422, "validation-error", "Validation failed"


class TooManyRequests(DomainError):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kw)


class ServiceUnavailable(DomainError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, str]] | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response; the one way errors leave any service or the gateway."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or _slugify(title or _TITLES.get(status, "error"))),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance if instance is not None else current_request_path(),
        "request_id": request_id or current_request_id(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def _slugify(text: str) -> str:
    return "-".join(text.lower().split())


def _field_path(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid value"))
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        elif err.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        out.append({"field": _field_path(err.get("loc", ())), "message": message})
    return out


# Failures PostgreSQL reports when two transactions collide (deadlock, serialization, lock timeout):
# nothing was written, and the same request succeeds when sent again.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
# Connection exceptions (08), insufficient resources such as too many connections (53), operator
# intervention such as a shutting-down server or a terminated backend (57P): the database is unavailable
# for now.
UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")
# Of those, the ones that mean this connection is gone (the server closes it after saying so).
LOST_CONNECTION_SQLSTATE_PREFIXES = ("08", "57P")
# What asyncpg says when a connection is used after the server closed it ("cannot call ...: connection is
# closed", "the underlying connection is closed", "connection was closed in the middle of operation"):
# SQLAlchemy's own test for a lost asyncpg connection, which only sees the first wording.
# And when the server's goodbye reached an idle connection before its socket closed: asyncpg's protocol is
# then stuck consuming an error (its state 2, PROTOCOL_ERROR_CONSUME) and refuses the next statement.
_CLOSED_CONNECTION = ("connection is closed", "connection was closed", "another operation (2) is in progress")
_DRIVER_MODULES = ("asyncpg", "sqlalchemy")


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc`, the driver error it wraps (`orig`) and the errors it was raised from (`raise ... from`),
    each once. Not `__context__`: an unrelated error handled earlier must not change the answer."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending and len(found) < 16:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending.append(current.__cause__)
        if isinstance(current, DBAPIError):
            orig = current.orig
            pending.append(orig if isinstance(orig, BaseException) else None)
    return found


def _sqlstate(exc: BaseException) -> str | None:
    state = getattr(exc, "sqlstate", None)  # asyncpg's errors and SQLAlchemy's adaptations of them
    return state if isinstance(state, str) else None


def _from_driver(exc: BaseException) -> bool:
    """Raised by asyncpg or SQLAlchemy (the error's class, or a frame it went through)."""
    if type(exc).__module__.startswith(_DRIVER_MODULES):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def is_transient_conflict(exc: BaseException) -> bool:
    return any(_sqlstate(e) in TRANSIENT_SQLSTATES for e in _causes(exc))


def is_connection_lost(exc: BaseException) -> bool:
    """The database closed the connection under the request, or it could not be reached: refused or reset
    connections, DNS or routing failures and timeouts inside the driver, a server shutting down or
    terminating the backend (57P01), a connection found closed mid-transaction (whether SQLAlchemy
    flagged it `connection_invalidated` or not: asyncpg may report the server's goodbye before the
    socket's end)."""
    for e in _causes(exc):
        if isinstance(e, ConnectionError):
            return True
        if isinstance(e, DBAPIError) and e.connection_invalidated:
            return True
        state = _sqlstate(e)
        if state is not None and state.startswith(LOST_CONNECTION_SQLSTATE_PREFIXES):
            return True
        if isinstance(e, OSError) and _from_driver(e):
            return True  # socket errors and timeouts inside asyncpg (TimeoutError is an OSError)
        if type(e).__module__.startswith(_DRIVER_MODULES) and any(w in str(e) for w in _CLOSED_CONNECTION):
            return True
    return False


def is_database_unavailable(exc: BaseException) -> bool:
    """`is_connection_lost`, or the database refuses work for now (too many connections, 53xxx; the pool
    could not replace a closed connection; the session still holds a connection invalidated earlier)."""
    if is_connection_lost(exc):
        return True
    for e in _causes(exc):
        state = _sqlstate(e)
        if state is not None and state.startswith(UNAVAILABLE_SQLSTATE_PREFIXES):
            return True
        if isinstance(e, sa_exc.DisconnectionError):
            return True
        if isinstance(e, sa_exc.PendingRollbackError) and "invalid transaction" in str(e):
            return True
    return False


def install_error_handlers(app: FastAPI) -> None:
    """Map every error path of a FastAPI app to problem+json."""

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return problem_response(
            exc.status,
            exc.detail,
            title=exc.title,
            slug=exc.slug,
            instance=request.url.path,
            headers=exc.headers,
            errors=exc.errors,
            **exc.extra,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            422,
            f"The request is invalid: check {fields}.",
            slug="validation-error",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}."
        return problem_response(
            exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None)
        )

    def come_back(request: Request, detail: str, slug: str, retry_after: int) -> JSONResponse:
        """503: not the client's fault and not a bug; the answer says when to try again."""
        return problem_response(
            503, detail, slug=slug, instance=request.url.path, headers={"Retry-After": str(retry_after)}
        )

    async def on_database(request: Request, exc: Exception) -> JSONResponse:
        where = f"{request.method} {request.url.path}"
        if is_transient_conflict(exc):
            logger.warning("transient database conflict on %s: %s", where, exc)
            detail = "The change collided with a concurrent one and was not made; send the request again."
            return come_back(request, detail, "concurrent-update", 1)
        if any(isinstance(e, sa_exc.TimeoutError) for e in _causes(exc)):
            # Every connection of the pool stayed busy for its whole wait (a flood, or connections held by
            # backends the database is slow to kill): the service is overloaded, not broken.
            logger.error("no database connection free on %s: %s", where, exc)
            detail = (
                "The service is too busy to take this request now (no database connection came free in time); "
                "try again shortly."
            )
            return come_back(request, detail, "service-busy", 5)
        if is_database_unavailable(exc):
            logger.error("database unavailable on %s: %r", where, exc)
            detail = (
                "The service's database is unavailable for now (unreachable, or it closed the connection); "
                "try again shortly."
            )
            return come_back(request, detail, "database-unavailable", 5)
        return await on_unexpected(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers unhandled exceptions outside every middleware, where the request id middleware
        # has already reset its context: the id is read from the request's state, where it also left it.
        request_id = current_request_id() or getattr(request.state, "request_id", None) or new_request_id()
        logger.exception("unhandled error on %s %s (request %s)", request.method, request.url.path, request_id)
        return problem_response(
            500,
            "An unexpected error occurred; it has been logged with this request id.",
            instance=request.url.path,
            request_id=request_id,
            headers={REQUEST_ID_HEADER: request_id},
        )

    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # Database errors (SQLAlchemy's, asyncpg's raised on its own connection) and socket errors: 503 when
    # the database is out of reach or dropped the connection, 500 otherwise (on_database decides).
    app.add_exception_handler(sa_exc.SQLAlchemyError, on_database)
    app.add_exception_handler(asyncpg.PostgresError, on_database)
    app.add_exception_handler(asyncpg.InterfaceError, on_database)
    app.add_exception_handler(asyncpg.InternalClientError, on_database)
    app.add_exception_handler(OSError, on_database)
    app.add_exception_handler(Exception, on_unexpected)
