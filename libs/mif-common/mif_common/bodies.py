"""Building blocks of request bodies, the same in every service.

The common text fields are declared here (`Line100`: one line of at most 100 characters; `Block500`: a
text of several lines; `Opt…`: the same, optional, an empty form field meaning none); a service declares
what is its own (a phone number, a remark) from the same validators, so that what counts as one line of
text, a blank optional value or a forbidden null means the same thing everywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

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


Line40 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), AfterValidator(single_line)
]
Line60 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60), AfterValidator(single_line)
]
Line100 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(single_line)
]
Line200 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(single_line)
]
Block500 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), AfterValidator(text_block)
]
Block1000 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000), AfterValidator(text_block)
]
Block2000 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(text_block)
]
OptLine100 = Annotated[Line100 | None, BeforeValidator(blank_to_none)]
OptLine200 = Annotated[Line200 | None, BeforeValidator(blank_to_none)]
OptBlock500 = Annotated[Block500 | None, BeforeValidator(blank_to_none)]
OptBlock1000 = Annotated[Block1000 | None, BeforeValidator(blank_to_none)]
OptBlock2000 = Annotated[Block2000 | None, BeforeValidator(blank_to_none)]
