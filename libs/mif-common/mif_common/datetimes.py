"""The clock (`now`), and date-times clients send, in bodies and query parameters: normalised to UTC and
kept within a range.

Python's `datetime` spans years 1 to 9999, but an instant near either end overflows as soon as it is
normalised to UTC (`9999-12-31T23:59:59-23:59` is in year 10000 in UTC) or moved by a day (a window
starting `9999-12-31`): an `OverflowError`, a 500. No date this suite handles is before 1900 or after
2999, so anything outside that range is refused where it is parsed, with a 422 naming the field.

- `DateTimeIn`: an ISO 8601 date-time; one without an offset is read as UTC (query parameters, and bodies
  that always accepted it).
- `AwareDateTimeIn`: the same, but the offset is required (`Z`, `+01:00`).

Both answer an aware datetime in UTC. Use them for every date-time a client sends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError


def now() -> datetime:
    """The current instant, aware, in UTC: the one clock of the services (a test moves it by patching
    the name where it is imported, e.g. `monkeypatch.setattr(service, "now", ...)`)."""
    return datetime.now(UTC)


MIN_YEAR = 1900
MAX_YEAR = 2999
RANGE_MESSAGE = f"must be between {MIN_YEAR}-01-01T00:00:00Z and {MAX_YEAR}-12-31T23:59:59Z"


def bounded_utc(value: datetime) -> datetime:
    """`value` in UTC (without an offset: read as UTC), refused outside years MIN_YEAR..MAX_YEAR in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    if not MIN_YEAR <= value.year <= MAX_YEAR:  # first: an offset then cannot overflow the conversion
        raise PydanticCustomError("datetime_range", RANGE_MESSAGE)
    utc = value.astimezone(UTC)
    if not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise PydanticCustomError("datetime_range", RANGE_MESSAGE)
    return utc


DateTimeIn = Annotated[datetime, AfterValidator(bounded_utc)]
AwareDateTimeIn = Annotated[AwareDatetime, AfterValidator(bounded_utc)]
