"""When an intervention is late: its `date_limite` has passed and it is still open (not closed,
cancelled or archived; no deadline, never late). One rule for the list filter (`en_retard`), the
lateness job, the KPIs and the `en_retard` field of an intervention: a SQL expression and the same
predicate in Python, from the same constants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mif_interventions.models import OPEN_STATUTS, Intervention

# The statuts in which a passed deadline makes an intervention late (in OPEN_STATUTS' order: the SQL
# reads as the lateness index's predicate).
LATE_STATUTS = tuple(s.value for s in OPEN_STATUTS)
_LATE_SET = frozenset(LATE_STATUTS)


def late_clause(now: datetime | sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """SQL: the intervention is late at `now`. The statuts are literals, not parameters: the list's
    statement keeps one SQL text per shape, and the lateness job's partial index (`statut IN (...)`)
    is matched by the planner."""
    return sa.and_(
        Intervention.date_limite < now,
        Intervention.statut.in_([sa.literal_column(f"'{statut}'") for statut in _LATE_SET]),
    )


def is_late(date_limite: datetime | None, statut: str, now: datetime) -> bool:
    """Python: the same rule as `late_clause`, on a row already read."""
    return date_limite is not None and date_limite < now and statut in _LATE_SET
