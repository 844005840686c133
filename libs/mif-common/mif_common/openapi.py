"""The error answers of every operation, documented from one place.

Every error leaves a service or the gateway as `application/problem+json` (`mif_common.errors`). FastAPI
documents none of that: it lists only the 422 of operations with parameters, as `application/json`
`HTTPValidationError`. `install_problem_docs` post-processes a service's generated document so that it
says what the service really answers: a `Problem` schema, and on each operation the error statuses it
can answer, from the rules below. The gateway applies `document_gateway_errors` to the combined document
for what it answers itself (rate limits, an unavailable or silent service).

Rules, per operation of a service:

- every operation: 400 (request guards: unreadable or hostile input) and 503 (its database or a service
  it asks is unavailable; `Retry-After`);
- parameters or a body: 422 (validation, with `errors: [{field, message}]`);
- authenticated (lists `security`: it depends on `mif_common.auth.deps.current_principal`): 401 and 403;
- a path parameter: 404;
- authenticated writes (POST, PUT, PATCH, DELETE): 404 (a resource they name does not exist) and 409 (the
  current state forbids it: a duplicate, a workflow step, a concurrent change);
- an `If-Match` header: 412;
- a body: 408 (it stopped arriving, `mif_common.guard`), 413 and 415;
- anything a route declares in `responses=` (e.g. sign-in's 401 and 429, a download's 416) is kept,
  with its description, as a problem.

500 is never documented: it is a bug, and the fuzz suite (`tests/reliability/test_fuzz_e2e.py`) fails on it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI

from mif_common.errors import PROBLEM_JSON

PROBLEM = "Problem"
FIELD_ERROR = "ProblemFieldError"
PROBLEM_REF = f"#/components/schemas/{PROBLEM}"
# Shared by every service's document: the gateway keeps them once, unprefixed, in the combined one.
SHARED_SCHEMAS = frozenset({PROBLEM, FIELD_ERROR})
# What FastAPI documents on its own and this module replaces.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_FASTAPI_DESCRIPTIONS = frozenset({"Validation Error", "Successful Response"})

WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

Document = dict[str, Any]

PROBLEM_SCHEMAS: dict[str, Any] = {
    PROBLEM: {
        "title": PROBLEM,
        "type": "object",
        "description": (
            "An error (RFC 9457 problem details), served as `application/problem+json`. `detail` is a sentence "
            "a user can act on; `request_id` is the `X-Request-ID` under which the request was logged."
        ),
        "required": ["type", "title", "status", "detail", "instance", "request_id"],
        "properties": {
            "type": {"type": "string", "description": "A URI naming the kind of problem."},
            "title": {"type": "string", "description": "A short summary of the kind of problem."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599, "description": "The HTTP status."},
            "detail": {"type": "string", "description": "What went wrong with this request."},
            "instance": {"type": "string", "description": "The path of the request."},
            "request_id": {"type": "string", "description": "The request's id (`X-Request-ID`)."},
            "errors": {
                "type": "array",
                "description": "One entry per invalid field (validation errors).",
                "items": {"$ref": f"#/components/schemas/{FIELD_ERROR}"},
            },
        },
        "additionalProperties": True,
    },
    FIELD_ERROR: {
        "title": FIELD_ERROR,
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": {"type": "string", "description": "The field, dotted (`items.0.nom`); `body` for the whole body."},
            "message": {"type": "string"},
        },
    },
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": '`Bearer realm="mif"`', "schema": {"type": "string"}}}

DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: unreadable body or parameters, or input refused by the request guards.",
    401: "No valid credentials: the access token is missing, invalid, expired or revoked.",
    403: "The caller's role or organisation may not do this.",
    404: "No such resource (or one the caller may not see).",
    405: "The method is not allowed on this path.",
    408: "The request body arrived too slowly.",
    409: "The current state forbids it: a duplicate, a workflow step not allowed now, a concurrent change.",
    412: "`If-Match` does not match the resource's current `ETag`: read it again.",
    413: "The request body is too large.",
    415: "The body's content type is not accepted here.",
    416: "The requested range is not satisfiable.",
    422: "The request is invalid: `errors` names each field.",
    429: "Too many requests: retry after `Retry-After` seconds.",
    502: "The service behind the gateway closed the connection or its answer broke off.",
    503: "Unavailable for now (the database, or a service this one asks): retry after `Retry-After` seconds.",
    504: "The service behind the gateway did not answer in time.",
}
_HEADERS: dict[int, dict[str, Any]] = {401: _WWW_AUTHENTICATE, 429: _RETRY_AFTER, 503: _RETRY_AFTER}


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error statuses (described here unless `descriptions` has `s401=...`)."""
    return {s: {"description": descriptions.get(f"s{s}", DESCRIPTIONS.get(s, "Error."))} for s in statuses}


def _problem_answer(status: int, description: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description or DESCRIPTIONS.get(status, "Error."),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
    if status in _HEADERS:
        answer["headers"] = copy.deepcopy(_HEADERS[status])
    return answer


def add_problem_schemas(document: Document) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in PROBLEM_SCHEMAS.items():
        schemas[name] = copy.deepcopy(schema)


def document_errors(operation: dict[str, Any], statuses: Iterable[int]) -> None:
    """List `statuses` on `operation` as problems, and turn its other error answers into problems."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(str(status), {})
    for key in list(responses):
        if not (key.isdigit() and int(key) >= 400):
            continue
        description = responses[key].get("description")
        if description in _FASTAPI_DESCRIPTIONS:
            description = None
        responses[key] = _problem_answer(int(key), description)
    operation["responses"] = dict(sorted(responses.items()))


def operations(document: Document) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                yield path, method, operation


def _parameters(operation: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [p for p in operation.get("parameters") or () if isinstance(p, Mapping)]


def service_error_statuses(method: str, operation: Mapping[str, Any], *, authenticated: bool) -> set[int]:
    """The error statuses a service's operation can answer (the rules of this module's docstring)."""
    parameters = _parameters(operation)
    has_body = "requestBody" in operation
    statuses = {400, 503}
    if parameters or has_body:
        statuses.add(422)
    if authenticated:
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if method in WRITE_METHODS and authenticated:
        statuses |= {404, 409}
    if any(p.get("in") == "header" and str(p.get("name", "")).lower() == "if-match" for p in parameters):
        statuses.add(412)
    if has_body:
        statuses |= {408, 413, 415}
    return statuses


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _drop_unreferenced_validation_schemas(document: Document) -> None:
    """FastAPI's validation schemas, once no answer refers to them any more."""
    schemas = document.get("components", {}).get("schemas", {})
    rest = {k: v for k, v in document.items() if k != "components"}
    others = {k: v for k, v in schemas.items() if k not in _FASTAPI_VALIDATION_SCHEMAS}
    used = _refs(rest) | _refs(others)
    for name in _FASTAPI_VALIDATION_SCHEMAS:  # HTTPValidationError first: it refers to ValidationError
        if name not in schemas:
            continue
        if f"#/components/schemas/{name}" in used:
            used |= _refs(schemas[name])
        else:
            del schemas[name]


def document_service_errors(document: Document) -> Document:
    """`document` (a service's) with the Problem schema and every operation's error answers. An operation
    needs an access token when it lists `security` (`mif_common.auth.deps.BEARER` puts it there)."""
    add_problem_schemas(document)
    for _, method, operation in operations(document):
        secured = bool(operation.get("security", document.get("security")))
        document_errors(operation, service_error_statuses(method, operation, authenticated=secured))
    _drop_unreferenced_validation_schemas(document)
    return document


def install_problem_docs(app: FastAPI) -> None:
    """Make `app.openapi()` (served at the service's `openapi.json`) document its error answers."""
    generate = app.openapi
    documented: list[Document] = []

    def openapi() -> Document:
        if not documented:
            documented.append(document_service_errors(copy.deepcopy(generate())))
        return documented[0]

    app.openapi = openapi  # type: ignore[method-assign]


def gateway_error_statuses(method: str, operation: Mapping[str, Any], *, public: bool, roles: bool) -> set[int]:
    """What the gateway itself may answer for a proxied operation: malformed requests (400), its rate limits
    (429), the service unavailable (503), closing the connection (502) or silent (504); the token (401) and
    role (403) checks of non-public operations; a path that is not routed for the given values (404); a body
    that stops arriving (408) or is too large (413)."""
    statuses = {400, 429, 502, 503, 504}
    if not public:
        statuses.add(401)
    if roles:
        statuses.add(403)
    if any(p.get("in") == "path" for p in _parameters(operation)):
        statuses.add(404)
    if "requestBody" in operation:
        statuses |= {408, 413}
    return statuses
