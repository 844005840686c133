"""Events the auth service consumes (none yet; assets' client events arrive with the assets service)."""

from __future__ import annotations

from mif_common.events import Handler

HANDLERS: dict[str, Handler] = {}
