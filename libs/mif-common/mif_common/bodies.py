"""Building blocks of request bodies, the same in every service.

Each service declares its own field types (`Annotated[str, StringConstraints(...), AfterValidator(single_line)]`,
with its own lengths) from these validators, so that what counts as one line of text, a blank optional value
or a forbidden null means the same thing everywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from mif_common.params import MAX_ID

# A reference to another row (ours or another service's) in a body: a PostgreSQL bigint id.
RefId = Annotated[int, Field(gt=0, le=MAX_ID)]


class Strict(BaseModel):
    """A request body: an unknown field is an error (a misspelt field must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


def single_line(value: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be one line of text, without control characters")
    return value


def text_block(value: str) -> str:
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return value


def blank_to_none(value: Any) -> Any:
    """Optional text sent empty (as forms do) means "no value"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def refuse_null(value: Any) -> Any:
    """For fields a partial update may omit but not set to null (a required column)."""
    if value is None:
        raise ValueError("may be omitted but not null")
    return value
