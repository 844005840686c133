"""Plan frequencies (DOMAIN.md §2): the canonical values, the spellings clients send, date arithmetic.

The interval of a frequency is a whole number of days, as DOMAIN.md §2 defines it (`mensuel` is 30
days, not "the same day next month"): the next due date is always the previous one plus that many
days, whatever the month lengths or leap years in between. Timestamps are UTC, so there is no
daylight-saving shift either.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from enum import StrEnum


class Frequence(StrEnum):
    journalier = "journalier"
    hebdomadaire = "hebdomadaire"
    mensuel = "mensuel"
    trimestriel = "trimestriel"
    semestriel = "semestriel"
    annuel = "annuel"


JOURS: dict[Frequence, int] = {
    Frequence.journalier: 1,
    Frequence.hebdomadaire: 7,
    Frequence.mensuel: 30,
    Frequence.trimestriel: 90,
    Frequence.semestriel: 182,
    Frequence.annuel: 365,
}

# Every accepted spelling, normalised (lower case, no accents, no spaces, hyphens or underscores):
# the canonical value, its feminine form, and the English words the frontend sends.
_SPELLINGS: dict[Frequence, tuple[str, ...]] = {
    Frequence.journalier: ("journalier", "journaliere", "quotidien", "quotidienne", "daily"),
    Frequence.hebdomadaire: ("hebdomadaire", "weekly"),
    Frequence.mensuel: ("mensuel", "mensuelle", "monthly"),
    Frequence.trimestriel: ("trimestriel", "trimestrielle", "quarterly"),
    Frequence.semestriel: ("semestriel", "semestrielle", "semiannual", "semiannually", "biannual", "halfyearly"),
    Frequence.annuel: ("annuel", "annuelle", "yearly", "annual", "annually"),
}
_LOOKUP: dict[str, Frequence] = {spelling: f for f, spellings in _SPELLINGS.items() for spelling in spellings}


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in plain if c not in " -_")


def accepted_values() -> str:
    """A sentence listing what `parse_frequence` accepts, for error messages."""
    return "; ".join(f"{f.value} ({', '.join(s for s in _SPELLINGS[f] if s != f.value)})" for f in Frequence)


class FrequenceInconnue(ValueError):
    """Not a frequency this service knows."""


def parse_frequence(text: str) -> Frequence:
    """The canonical frequency for any accepted spelling (case and accents do not matter)."""
    found = _LOOKUP.get(_normalise(text))
    if found is None:
        raise FrequenceInconnue(f"Unknown frequency '{text}'. Accepted values: {accepted_values()}.")
    return found


def interval(frequence: Frequence) -> timedelta:
    return timedelta(days=JOURS[frequence])


def next_date(current: datetime, frequence: Frequence) -> datetime:
    """The due date after `current`: `current` plus the frequency's days."""
    return current + interval(frequence)
