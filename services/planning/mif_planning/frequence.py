"""Plan frequencies' date arithmetic. The vocabulary (`Frequence`, `JOURS`, the accepted spellings) is
`mif_common.frequences` (DOMAIN.md §2).

The interval of a frequency is a whole number of days, as DOMAIN.md §2 defines it (`mensuel` is 30
days, not "the same day next month"): the next due date is always the previous one plus that many
days, whatever the month lengths or leap years in between. Timestamps are UTC, so there is no
daylight-saving shift either.
"""

from __future__ import annotations

from datetime import timedelta

from mif_common.frequences import JOURS, Frequence


def interval(frequence: Frequence) -> timedelta:
    """The time from one due date of a plan to the next: the frequency's whole days."""
    return timedelta(days=JOURS[frequence])
