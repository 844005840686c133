"""The event catalogue: an AsyncAPI 3.0 document and a Markdown page generated from the code.

`python -m mif_common.events.catalogue` writes docs/events/asyncapi.json and docs/events/catalogue.md;
`--check` fails when they drift from the code or when an invariant breaks (every consumed type has
exactly one publisher, whose name prefixes the type; types are `<service>.<entity>.<verb>.v<N>`).
"""

from mif_common.events.catalogue.asyncapi import build_asyncapi
from mif_common.events.catalogue.discovery import ACCEPTED_VIOLATIONS, DOCS_DIR, discover_catalogue
from mif_common.events.catalogue.files import ASYNCAPI_FILE, MARKDOWN_FILE, drift, dump_json, render_files, write_files
from mif_common.events.catalogue.markdown import render_markdown
from mif_common.events.catalogue.model import (
    Catalogue,
    CatalogueError,
    Consumer,
    Publication,
    Violation,
    build_catalogue,
    topic_matches,
)
from mif_common.events.catalogue.view import EventView, event_views

__all__ = [
    "ACCEPTED_VIOLATIONS",
    "ASYNCAPI_FILE",
    "DOCS_DIR",
    "MARKDOWN_FILE",
    "Catalogue",
    "CatalogueError",
    "Consumer",
    "EventView",
    "Publication",
    "Violation",
    "build_asyncapi",
    "build_catalogue",
    "discover_catalogue",
    "drift",
    "dump_json",
    "event_views",
    "render_files",
    "render_markdown",
    "topic_matches",
    "write_files",
]
