"""Reading back a generated AsyncAPI document into one row per event type.

The Markdown catalogue and the gateway's `/docs/events` page both render from the document rather than
from the code, so they show exactly what the checked-in `asyncapi.json` says (the gateway does not import
the services).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]
SCHEMA_PREFIX = "#/components/schemas/"


@dataclass(frozen=True, slots=True)
class ConsumerView:
    name: str
    queue: str
    binding: str


@dataclass(frozen=True, slots=True)
class EventView:
    event_type: str
    publisher: str | None
    consumers: tuple[ConsumerView, ...]
    summary: str
    description: str
    version: int | None
    contract: str | None
    # Why a consumed type has no publisher (an accepted exception), else None.
    unpublished: str | None
    # The `data` schema with its references to other components inlined (None: unknown payload).
    data_schema: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class FieldView:
    name: str
    type: str
    required: bool
    default: str | None  # JSON text of the default, None when there is none


def type_label(schema: Any) -> str:
    """A short type for a field table: `integer`, `string (date-time)`, `string or null`, `list of ...`."""
    if not isinstance(schema, dict):
        return ""
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    if isinstance(schema.get("enum"), list):
        return "one of " + ", ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return " or ".join(type_label(s) for s in schema[key])
    kind = schema.get("type")
    if kind == "array":
        return f"list of {type_label(schema.get('items', {})) or 'any'}"
    if kind == "object" and isinstance(schema.get("properties"), dict):
        return "{" + ", ".join(schema["properties"]) + "}"
    label = str(kind) if kind else str(schema.get("title", "any"))
    return f"{label} ({schema['format']})" if "format" in schema else label


def field_views(schema: dict[str, Any]) -> list[FieldView]:
    """The top-level fields of an object schema, in the schema's order."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return []
    required = set(schema.get("required", []))
    return [
        FieldView(
            name=name,
            type=type_label(field),
            required=name in required,
            default=json.dumps(field["default"], ensure_ascii=False)
            if isinstance(field, dict) and "default" in field
            else None,
        )
        for name, field in properties.items()
    ]


def inline_refs(node: Any, schemas: dict[str, Any], seen: frozenset[str] = frozenset()) -> Any:
    """`node` with `#/components/schemas/...` references replaced by their definitions (a reference
    back to a schema being expanded is left as is)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_PREFIX) and len(node) == 1:
            name = ref.removeprefix(SCHEMA_PREFIX)
            if name in schemas and name not in seen:
                return inline_refs(schemas[name], schemas, seen | {name})
            return node
        return {k: inline_refs(v, schemas, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, schemas, seen) for v in node]
    return node


def _data_schema(message: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    for part in message.get("payload", {}).get("allOf", []):
        data = part.get("properties", {}).get("data") if isinstance(part, dict) else None
        if isinstance(data, dict):
            inlined = inline_refs(data, schemas)
            return inlined if isinstance(inlined, dict) else None
    return None


def _channel_of(operation: dict[str, Any]) -> str:
    return str(operation.get("channel", {}).get("$ref", "")).removeprefix("#/channels/")


def event_views(document: Document) -> list[EventView]:
    """One view per channel, by event type."""
    components = document.get("components", {})
    schemas: dict[str, Any] = components.get("schemas", {})
    messages: dict[str, Any] = components.get("messages", {})
    publishers: dict[str, str] = {}
    consumers: dict[str, list[ConsumerView]] = {}
    for operation in document.get("operations", {}).values():
        channel = _channel_of(operation)
        service = str(operation.get("x-mif-service", ""))
        if operation.get("action") == "send":
            publishers[channel] = service
        elif operation.get("action") == "receive":
            consumers.setdefault(channel, []).append(
                ConsumerView(service, str(operation.get("x-mif-queue", "")), str(operation.get("x-mif-binding", "")))
            )
    views = []
    for event_type, channel in sorted(document.get("channels", {}).items()):
        first: dict[str, Any] = next(iter(channel.get("messages", {}).values()), {})
        ref = first.get("$ref", "")
        message: dict[str, Any] = messages.get(str(ref).removeprefix("#/components/messages/"), {})
        event = message.get("x-mif-event", {})
        views.append(
            EventView(
                event_type=event_type,
                publisher=publishers.get(event_type),
                consumers=tuple(sorted(consumers.get(event_type, []), key=lambda c: c.name)),
                summary=str(message.get("summary", "")),
                description=str(message.get("description", "")),
                version=event.get("version") if isinstance(event.get("version"), int) else None,
                contract=message.get("x-mif-contract"),
                unpublished=message.get("x-mif-unpublished"),
                data_schema=_data_schema(message, schemas),
            )
        )
    return views


def envelope(document: Document) -> dict[str, Any]:
    schema = document.get("components", {}).get("schemas", {}).get("CloudEvent", {})
    return schema if isinstance(schema, dict) else {}
