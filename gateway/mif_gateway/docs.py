"""`/openapi.json` and `/docs`: one OpenAPI document combined from every reachable service.

Each service serves its own document at `/api/v1/<service>/openapi.json`. The gateway fetches them
(concurrently, cached briefly), keeps only the operations its policy routes to that service,
prefixes component names per service (`assets_ClientOut`) and rewrites every `$ref` to match, so
two services may both have a `Page` or `HTTPValidationError`. Each operation gains `x-mif-access`
(who may call it through the gateway) and the error answers of the gateway itself (rate limits, a service
unavailable or silent: `mif_common.openapi.gateway_error_statuses`), as `Problem`s like the services' own;
`Problem` is kept once, unprefixed. Services that do not answer are named in `info.description`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from mif_common.docs_assets import swagger_page
from mif_common.openapi import (
    HTTP_METHODS,
    SHARED_SCHEMAS,
    add_problem_schemas,
    document_errors,
    gateway_error_statuses,
)
from mif_gateway.policy import AccessKind, Policy
from mif_gateway.routes import service_for

logger = logging.getLogger(__name__)

# The event catalogue's page (mif_gateway.events_docs), linked from the OpenAPI document and /docs.
EVENTS_PAGE = "/docs/events"
_TEMPLATE_PARAM = re.compile(r"\{[^}/]+\}")

Document = dict[str, Any]


def _concrete(path: str) -> str:
    """A path the policy can match for an OpenAPI path template (`{param}` → `1`)."""
    concrete = _TEMPLATE_PARAM.sub("1", path)
    return concrete.rstrip("/") if len(concrete) > 1 else concrete


def _rewrite_refs(node: Any, refs: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = refs.get(value, value)
            elif key == "mapping" and isinstance(value, dict):
                out[key] = {k: refs.get(v, v) if isinstance(v, str) else v for k, v in value.items()}
            else:
                out[key] = _rewrite_refs(value, refs)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item, refs) for item in node]
    return node


def _rename_security(requirements: Any, names: Mapping[str, str]) -> Any:
    if not isinstance(requirements, list):
        return requirements
    return [{names.get(k, k): v for k, v in req.items()} if isinstance(req, dict) else req for req in requirements]


def merge_documents(
    documents: Mapping[str, Document | None], policy: Policy, *, title: str = "MIF maintenance suite API"
) -> Document:
    """Combine the services' documents (None: unavailable) into one."""
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    tags: dict[str, Any] = {}
    unavailable = sorted(name for name, doc in documents.items() if doc is None)
    for service, document in documents.items():
        if document is None:
            continue
        doc = copy.deepcopy(document)
        refs: dict[str, str] = {}
        security_names: dict[str, str] = {}
        for kind, entries in (doc.get("components") or {}).items():
            if not isinstance(entries, dict):
                continue
            bucket = components.setdefault(kind, {})
            for name, definition in entries.items():
                # The same security scheme (or Problem) in every service: shown once, unprefixed.
                shared = kind == "securitySchemes" or (kind == "schemas" and name in SHARED_SCHEMAS)
                new_name = name if shared and bucket.get(name, definition) == definition else f"{service}_{name}"
                refs[f"#/components/{kind}/{name}"] = f"#/components/{kind}/{new_name}"
                if kind == "securitySchemes":
                    security_names[name] = new_name
        doc = _rewrite_refs(doc, refs)
        for kind, entries in (doc.get("components") or {}).items():
            if not isinstance(entries, dict):
                continue
            for name, definition in entries.items():
                target = refs[f"#/components/{kind}/{name}"].rsplit("/", 1)[1]
                components.setdefault(kind, {})[target] = definition
        default_security = doc.get("security")
        for path, item in (doc.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            concrete = _concrete(path)
            if service_for(concrete) != service:
                continue
            kept: dict[str, Any] = {k: v for k, v in item.items() if k not in HTTP_METHODS}
            for method in HTTP_METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                rule = policy.match(method.upper(), concrete)
                if rule is None or rule.access.kind is AccessKind.internal:
                    continue
                operation["x-mif-access"] = rule.access.describe()
                document_errors(
                    operation,
                    gateway_error_statuses(
                        method,
                        operation,
                        public=rule.access.kind is AccessKind.public,
                        roles=rule.access.kind is AccessKind.roles,
                    ),
                )
                if "operationId" in operation:
                    operation["operationId"] = f"{service}_{operation['operationId']}"
                security = operation.get("security", default_security)
                if security is not None:
                    operation["security"] = _rename_security(security, security_names)
                for tag in operation.get("tags", []):
                    tags.setdefault(tag, {"name": tag})
                kept[method] = operation
            if any(m in kept for m in HTTP_METHODS):
                paths.setdefault(path, {}).update(kept)
        for tag in doc.get("tags") or []:
            if isinstance(tag, dict) and "name" in tag:
                tags[tag["name"]] = tag
    description = (
        "Every call goes through the gateway, which checks the bearer token and the caller's role "
        "(`x-mif-access` on each operation); the owning service applies row-level rules.\n\n"
        f"Domain events (who publishes and consumes what, with their schemas): [{EVENTS_PAGE}]({EVENTS_PAGE}), "
        "machine-readable at [/asyncapi.json](/asyncapi.json) (AsyncAPI 3.0)."
    )
    if unavailable:
        description += "\n\nUnavailable right now (their operations are missing): " + ", ".join(unavailable) + "."
    merged_components = {"schemas": {}, **components}
    add_problem_schemas({"components": merged_components})
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0", "description": description},
        "paths": dict(sorted(paths.items())),
        "components": merged_components,
        "tags": list(tags.values()),
        "x-mif-unavailable": unavailable,
        "externalDocs": {"description": "Domain events (AsyncAPI 3.0: /asyncapi.json)", "url": EVENTS_PAGE},
    }


class OpenApiAggregator:
    """Fetches every service's document, merges them, and caches the result for a short while."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        upstream_urls: Mapping[str, str],
        policy: Policy,
        ttl: float = 30.0,
        timeout: float = 3.0,
    ) -> None:
        self.http = http
        self.upstream_urls = dict(upstream_urls)
        self.policy = policy
        self.ttl = ttl
        self.timeout = timeout
        self._cached: tuple[float, Document] | None = None
        self._lock = asyncio.Lock()

    async def document(self) -> Document:
        cached = self._cached
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self._lock:
            cached = self._cached
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            names = list(self.upstream_urls)
            fetched = await asyncio.gather(*(self._fetch(name) for name in names))
            documents = dict(zip(names, fetched, strict=True))
            merged = merge_documents(documents, self.policy)
            # A service that is down is asked again soon rather than after the full TTL.
            ttl = self.ttl if all(d is not None for d in fetched) else min(self.ttl, 5.0)
            self._cached = (time.monotonic() + ttl, merged)
            return merged

    async def _fetch(self, service: str) -> Document | None:
        url = f"{self.upstream_urls[service]}/api/v1/{service}/openapi.json"
        try:
            response = await self.http.get(url, timeout=self.timeout)
            if response.status_code != 200:
                return None
            document = response.json()
        except (httpx.HTTPError, json.JSONDecodeError, ValueError) as exc:
            logger.info("OpenAPI document of %s unavailable: %s", service, type(exc).__name__)
            return None
        return document if isinstance(document, dict) and isinstance(document.get("paths"), dict) else None


router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def combined_openapi(request: Request) -> JSONResponse:
    aggregator: OpenApiAggregator = request.app.state.openapi
    return JSONResponse(await aggregator.document())


# Plain HTML above Swagger UI: the event catalogue and the raw documents, one click away.
_DOCS_LINKS = (
    '<p style="font-family: sans-serif; margin: 1rem">'
    f'<a href="{EVENTS_PAGE}">Domain events</a> (<a href="/asyncapi.json">asyncapi.json</a>) · '
    '<a href="/openapi.json">openapi.json</a></p>'
)


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return swagger_page(openapi_url="/openapi.json", title="MIF maintenance suite API", above=_DOCS_LINKS)
