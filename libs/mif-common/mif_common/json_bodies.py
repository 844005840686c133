"""JSON bodies of lists, written without FastAPI's `jsonable_encoder` and byte for byte as it wrote them.

A list answered with `JSONResponse(jsonable_encoder(models))` spent ~1.6 ms of CPU per 50 rows in
`jsonable_encoder` alone (a recursive walk in Python over every value of every row): a quarter of the
service's CPU for a list. What replaces it, measured on 50 `EquipementOut` (µs per page, in process):

    jsonable_encoder + json.dumps (JSONResponse) 1570
    TypeAdapter(list[Model]).dump_json              80   <- `dump_models`: pydantic's own serializer
    orjson of model_dump(mode="json")              129
    orjson of model_dump() (python mode)            85
    orjson of the rows (dicts), no model            19   <- `dump_rows`: rows selected as the model's fields
    model_validate of 50 rows (not serializing)    104

The bytes are the same as before (libs/mif-common/tests/test_json_bodies.py, and each service's
tests/test_list_bodies.py on its real lists): `JSONResponse` writes the output of pydantic's JSON mode
with `json.dumps(ensure_ascii=False, separators=(",", ":"))`, and pydantic's serializer and orjson write
strings (UTF-8, the same escapes), integers, booleans, null, dates and UTC datetimes (`...Z`,
microseconds only when there are some) exactly as that does. Floats are the exception: Python writes
`1e-07` where pydantic and orjson write `1e-7`; a model that can hold a float (a `float` field, or `Any`
as in a JSON `dict[str, Any]`) is therefore written the old way (`json.dumps` of
`model_dump(mode="json")`, still ~3x cheaper than `jsonable_encoder`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter

JSON_MEDIA_TYPE = "application/json"
_EMPTY = b"[]"


def _default(value: Any) -> Any:
    """What orjson does not write itself, as pydantic's JSON mode writes it in a model."""
    if isinstance(value, Decimal):
        return str(value)  # a `Decimal` field: pydantic writes the number as a string
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dump_rows(content: Any) -> bytes:
    """Rows (dicts of database values, keys in the model's field order) as the API's model would write
    them: strings, numbers, booleans, null, enums (their value), dates and datetimes (UTC as `Z`).

    The rows must carry exactly the model's fields, as the database returns them (asyncpg gives UTC
    datetimes); no validation happens on this path, so it is for models that only copy columns."""
    return orjson.dumps(content, option=orjson.OPT_UTC_Z, default=_default)


def _holds_float(schema: Any) -> bool:
    """Whether a pydantic core schema can serialize a float anywhere (a `float` or an untyped value)."""
    if isinstance(schema, dict):
        if schema.get("type") in ("float", "any"):
            return True
        return any(_holds_float(value) for value in schema.values())
    if isinstance(schema, list | tuple):
        return any(_holds_float(value) for value in schema)
    return False


@cache
def list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    """pydantic's serializer for a list of `model`, built once (building one costs more than using it)."""
    return TypeAdapter(list[model])  # type: ignore[valid-type]


@cache
def _holds_float_model(model: type[BaseModel]) -> bool:
    return _holds_float(model.__pydantic_core_schema__)


def dump_models(items: Sequence[BaseModel]) -> bytes:
    """A list of pydantic models, as `JSONResponse(jsonable_encoder(items))` wrote it."""
    if not items:
        return _EMPTY
    model = type(items[0])
    if not _holds_float_model(model) and all(type(item) is model for item in items):
        return list_adapter(model).dump_json(_as_list(items), by_alias=True)
    return dump_like_jsonresponse([item.model_dump(mode="json", by_alias=True) for item in items])


def dump_models_as_pydantic(items: Sequence[BaseModel]) -> bytes:
    """A list of pydantic models as pydantic's `TypeAdapter(list[Model]).dump_json` writes it, floats
    included: for the lists that were already written so (their bytes stay the same)."""
    if not items:
        return _EMPTY
    return list_adapter(type(items[0])).dump_json(_as_list(items), by_alias=True)


def _as_list(items: Sequence[BaseModel]) -> list[BaseModel]:
    return items if isinstance(items, list) else list(items)


def dump_like_jsonresponse(content: Any) -> bytes:
    """Exactly `JSONResponse.render` (JSON-mode values in, the bytes FastAPI has always written out)."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")
