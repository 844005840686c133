"""Plan frequencies: every spelling clients send, and the next-date arithmetic (DOMAIN.md §2: whole
days, so month ends and leap years only matter through the calendar dates they produce)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mif_planning.frequence import JOURS, Frequence, FrequenceInconnue, next_date, parse_frequence
from mif_planning.schemas import as_utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("journalier", "journalier"),
        ("journaliere", "journalier"),
        ("Journalière", "journalier"),
        ("daily", "journalier"),
        ("hebdomadaire", "hebdomadaire"),
        ("weekly", "hebdomadaire"),
        ("WEEKLY", "hebdomadaire"),
        ("mensuel", "mensuel"),
        ("mensuelle", "mensuel"),
        ("Monthly", "mensuel"),
        ("trimestriel", "trimestriel"),
        ("trimestrielle", "trimestriel"),
        ("quarterly", "trimestriel"),
        ("semestriel", "semestriel"),
        ("semestrielle", "semestriel"),
        ("semiannual", "semestriel"),
        ("semi-annual", "semestriel"),
        ("biannual", "semestriel"),
        ("annuel", "annuel"),
        ("annuelle", "annuel"),
        ("yearly", "annuel"),
        ("annual", "annuel"),
        ("  Annuel  ", "annuel"),
    ],
)
def test_every_accepted_spelling_gives_the_canonical_value(text: str, expected: str) -> None:
    assert parse_frequence(text) == Frequence(expected)


@pytest.mark.parametrize("text", ["", "biennal", "every day", "30", "mensuels", "hebdo"])
def test_unknown_frequencies_name_the_accepted_values(text: str) -> None:
    with pytest.raises(FrequenceInconnue) as raised:
        parse_frequence(text)
    message = str(raised.value)
    assert f"Unknown frequency '{text}'" in message
    for canonical in Frequence:
        assert canonical.value in message
    assert "mensuelle" in message and "monthly" in message and "biannual" in message


def test_intervals_are_the_domain_days() -> None:
    assert {f.value: d for f, d in JOURS.items()} == {
        "journalier": 1,
        "hebdomadaire": 7,
        "mensuel": 30,
        "trimestriel": 90,
        "semestriel": 182,
        "annuel": 365,
    }


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "frequence", "expected"),
    [
        # month ends: 30 days, whatever the month's length
        (at(2026, 1, 31, 8), "mensuel", at(2026, 3, 2, 8)),
        (at(2028, 1, 31, 8), "mensuel", at(2028, 3, 1, 8)),  # leap February has 29 days
        (at(2026, 2, 28, 8), "mensuel", at(2026, 3, 30, 8)),
        (at(2026, 12, 31, 23, 30), "journalier", at(2027, 1, 1, 23, 30)),
        (at(2026, 4, 30, 6), "hebdomadaire", at(2026, 5, 7, 6)),
        # leap years: 365 days lands on Feb 29, or the day before the anniversary
        (at(2027, 3, 1, 8), "annuel", at(2028, 2, 29, 8)),
        (at(2028, 2, 29, 8), "annuel", at(2029, 2, 28, 8)),
        (at(2028, 2, 28, 8), "journalier", at(2028, 2, 29, 8)),
        (at(2027, 2, 28, 8), "journalier", at(2027, 3, 1, 8)),
        (at(2027, 12, 1, 8), "trimestriel", at(2028, 2, 29, 8)),
        (at(2028, 1, 1, 0), "semestriel", at(2028, 7, 1, 0)),
        (at(2027, 1, 1, 0), "semestriel", at(2027, 7, 2, 0)),
    ],
)
def test_next_date_adds_whole_days(start: datetime, frequence: str, expected: datetime) -> None:
    assert next_date(start, Frequence(frequence)) == expected


def test_twelve_monthly_occurrences_drift_from_calendar_months_by_design() -> None:
    due = at(2026, 1, 15, 8)
    for _ in range(12):
        due = next_date(due, Frequence.mensuel)
    assert due == at(2027, 1, 10, 8)  # 360 days later


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 3, 1), at(2026, 3, 1)),
        (datetime(2026, 3, 1, 8, 30, 15, 999), at(2026, 3, 1, 8, 30, 15)),  # naive: UTC; no sub-seconds
        (datetime.fromisoformat("2026-03-01T09:30:00+01:00"), at(2026, 3, 1, 8, 30)),
    ],
)
def test_dates_are_read_as_utc_to_the_second(value: datetime | date, expected: datetime) -> None:
    assert as_utc(value) == expected
    assert as_utc(value).tzinfo is UTC
