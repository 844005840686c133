"""Plan frequencies: the shared vocabulary (`mif_common.frequences`, DOMAIN.md §2) and date arithmetic.

The interval of a frequency is a whole number of days, as DOMAIN.md §2 defines it (`mensuel` is 30
days, not "the same day next month"): the next due date is always the previous one plus that many
days, whatever the month lengths or leap years in between. Timestamps are UTC, so there is no
daylight-saving shift either.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mif_common.frequences import JOURS, Frequence, FrequenceInconnue, accepted_values, parse_frequence

__all__ = [
    "JOURS",
    "Frequence",
    "FrequenceInconnue",
    "accepted_values",
    "interval",
    "next_date",
    "parse_frequence",
]


def interval(frequence: Frequence) -> timedelta:
    return timedelta(days=JOURS[frequence])


def next_date(current: datetime, frequence: Frequence) -> datetime:
    """The due date after `current`: `current` plus the frequency's days."""
    return current + interval(frequence)
