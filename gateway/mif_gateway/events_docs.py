"""`/asyncapi.json` and `/docs/events`: the domain-event catalogue, next to `/openapi.json` and `/docs`.

Both come from the checked-in, generated `docs/events/asyncapi.json` (`make catalogue`), read once: the
JSON is served byte for byte, and the page is rendered on the server from it, plain HTML and CSS with no
script and no CDN, so it reads the same on a machine without internet access. The gateway does not
import the services: what it shows is the contract as committed, which a test keeps equal to the code.
Like `/docs`, these paths are outside `/api/*`, so the policy table does not apply: they are public.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mif_common.errors import ServiceUnavailable
from mif_common.events.catalogue.view import EventView, envelope, event_views, field_views

Document = dict[str, Any]

_CODE = re.compile(r"`([^`]+)`")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code, pre { font-family: ui-monospace, monospace; font-size: .9em; }
pre { background: #f6f8fa; padding: .75rem; overflow-x: auto; }
section { border-top: 1px solid #ddd; margin-top: 1.5rem; }
.missing { color: #a00; font-weight: bold; }
"""


@dataclass(frozen=True, slots=True)
class LoadedCatalogue:
    raw: bytes
    page: str


class EventCatalogue:
    """The catalogue file, read and rendered on first use and then kept (it ships with the code)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded: LoadedCatalogue | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> LoadedCatalogue:
        if self._loaded is None:
            async with self._lock:
                if self._loaded is None:
                    self._loaded = await asyncio.to_thread(self._load)
        return self._loaded

    def _load(self) -> LoadedCatalogue:
        try:
            raw = self.path.read_bytes()
            document = json.loads(raw)
        except (OSError, ValueError) as exc:
            # Not cached: the next request tries again (e.g. a volume mounted late).
            raise ServiceUnavailable(
                f"The event catalogue is not available ({self.path.name}: {type(exc).__name__}). "
                "Generate it with `make catalogue`, or set MIF_GATEWAY_ASYNCAPI_PATH."
            ) from exc
        if not isinstance(document, dict) or not isinstance(document.get("channels"), dict):
            raise ServiceUnavailable(f"The event catalogue {self.path.name} is not an AsyncAPI document.")
        return LoadedCatalogue(raw=raw, page=render_page(document))


def _text(value: str) -> str:
    """Escaped text with `code` spans, paragraphs kept."""
    paragraphs = [p for p in value.split("\n\n") if p.strip()]
    return "".join("<p>" + _CODE.sub(r"<code>\1</code>", html.escape(" ".join(p.split()))) + "</p>" for p in paragraphs)


def _code(value: str) -> str:
    return f"<code>{html.escape(value)}</code>"


def _pre(value: Any) -> str:
    return f"<pre>{html.escape(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _anchor(event_type: str) -> str:
    return "event-" + re.sub(r"[^A-Za-z0-9_.-]", "-", event_type)


def _summary_table(views: list[EventView]) -> str:
    rows = [_row(["event type", "version", "publisher", "consumers", "contract"], "th")]
    for v in views:
        publisher = html.escape(v.publisher) if v.publisher else '<span class="missing">none</span>'
        rows.append(
            _row(
                [
                    f'<a href="#{_anchor(v.event_type)}">{_code(v.event_type)}</a>',
                    f"v{v.version}" if v.version is not None else "",
                    publisher,
                    html.escape(", ".join(c.name for c in v.consumers)) or "—",
                    _code(v.contract) if v.contract else "",
                ]
            )
        )
    return "<table>" + "".join(rows) + "</table>"


def _event_section(v: EventView) -> str:
    parts = [f'<section id="{_anchor(v.event_type)}"><h3>{_code(v.event_type)}</h3>']
    parts.append(_text(v.description or v.summary))
    if v.unpublished:
        parts.append(f'<p class="missing">No publisher: {html.escape(v.unpublished)}.</p>')
    facts = [f"<li>publisher: {html.escape(v.publisher or '—')}</li>"]
    facts += [
        f"<li>consumer: {html.escape(c.name)} (queue {_code(c.queue)}, binding {_code(c.binding)})</li>"
        for c in v.consumers
    ]
    if not v.consumers:
        facts.append("<li>consumers: none yet</li>")
    if v.contract:
        facts.append(f"<li>contract: {_code(v.contract)}</li>")
    parts.append("<ul>" + "".join(facts) + "</ul>")
    if v.data_schema is not None:
        fields = field_views(v.data_schema)
        if fields:
            rows = [_row(["field", "type", "required"], "th")]
            rows += [
                _row(
                    [
                        _code(f.name),
                        html.escape(f.type),
                        "yes" if f.required else "no" + (f" (default {_code(f.default)})" if f.default else ""),
                    ]
                )
                for f in fields
            ]
            parts.append("<p><code>data</code>:</p><table>" + "".join(rows) + "</table>")
        parts.append(f"<details><summary>JSON Schema of <code>data</code></summary>{_pre(v.data_schema)}</details>")
    parts.append("</section>")
    return "".join(parts)


def render_page(document: Document) -> str:
    info = document.get("info", {})
    title = str(info.get("title", "Domain events"))
    views = event_views(document)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        '<p><a href="/asyncapi.json">asyncapi.json</a> (AsyncAPI '
        f"{html.escape(str(document.get('asyncapi', '')))}) · "
        '<a href="/docs">HTTP API (OpenAPI)</a></p>',
        _text(str(info.get("description", ""))),
        f"<h2>Event types ({len(views)})</h2>",
        _summary_table(views),
        "<h2>Envelope</h2>",
        "<p>Every message body (<code>application/cloudevents+json</code>); "
        "<code>data</code> is the event type's payload below.</p>",
        _pre(envelope(document)),
        "<h2>Events</h2>",
        *(_event_section(v) for v in views),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>" + "".join(body) + "</body></html>"
    )


router = APIRouter(include_in_schema=False)


def _catalogue(request: Request) -> EventCatalogue:
    catalogue: EventCatalogue = request.app.state.event_catalogue
    return catalogue


@router.get("/asyncapi.json")
async def asyncapi_document(request: Request) -> Response:
    loaded = await _catalogue(request).get()
    return Response(content=loaded.raw, media_type="application/json")


@router.get("/docs/events")
async def events_page(request: Request) -> HTMLResponse:
    loaded = await _catalogue(request).get()
    return HTMLResponse(loaded.page)
