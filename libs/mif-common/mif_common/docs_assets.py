"""Swagger UI served from the process itself, never from a CDN: the suite usually runs on a plant network
without internet, where a CDN-hosted `/docs` stays blank.

The assets come from the pinned `swagger-ui-bundle-v2` package and are served under `/docs/static` by every
service and by the gateway alike, so a page's absolute asset URLs resolve whether it was fetched from the
process itself or through the gateway (`/api/v1/<service>/docs` is relayed; `/docs/static/...` then comes
from the gateway, which serves the very same files).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.requests import Request
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC_PREFIX = "/docs/static"
_SWAGGER_ROOT = '<div id="swagger-ui">'


def mount_swagger_assets(app: FastAPI) -> None:
    """Serve Swagger UI's JavaScript, CSS and icons at `/docs/static` (outside the OpenAPI document)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")


def swagger_page(*, openapi_url: str, title: str, above: str = "") -> HTMLResponse:
    """The Swagger UI page of `openapi_url` with local assets; `above`: HTML shown above the UI."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PREFIX}/favicon-32x32.png",
    )
    if not above:
        return page
    return HTMLResponse(bytes(page.body).decode().replace(_SWAGGER_ROOT, above + _SWAGGER_ROOT, 1))


def install_offline_docs(app: FastAPI, *, docs_url: str, openapi_url: str, title: str) -> None:
    """A service's own `/docs` page (FastAPI's is switched off: it points at a CDN) and its assets."""

    async def docs(request: Request) -> HTMLResponse:
        return swagger_page(openapi_url=openapi_url, title=f"{title} - Swagger UI")

    app.add_route(docs_url, docs, methods=["GET"], include_in_schema=False)
    mount_swagger_assets(app)
