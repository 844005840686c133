"""Path and query parameter types shared by every service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Ids are PostgreSQL bigints: anything outside that range is a client error (422), never a 500.
MAX_ID = 9_223_372_036_854_775_807
EntityId = Annotated[int, Path(gt=0, le=MAX_ID, description="Positive integer id.")]

# A repeated query parameter (`?statut=a&statut=b`) takes at most this many values: each becomes a bound
# parameter of a statement, and PostgreSQL's protocol allows 32767 of them (beyond that, a 500).
MAX_REPEATS = 50
