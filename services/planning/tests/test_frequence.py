"""Plan frequencies: the next-date arithmetic (DOMAIN.md §2: whole days, so month ends and leap years only
matter through the calendar dates they produce). The vocabulary itself (every spelling clients send, the
domain days, the messages) is mif_common's: libs/mif-common/tests/test_frequences.py."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from mif_common.frequences import Frequence
from mif_planning.frequence import interval
from mif_planning.schemas import as_utc


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
    assert start + interval(Frequence(frequence)) == expected


@pytest.mark.parametrize("frequence", list(Frequence))
def test_the_interval_is_the_frequencys_domain_days(frequence: Frequence) -> None:
    days = {"journalier": 1, "hebdomadaire": 7, "mensuel": 30, "trimestriel": 90, "semestriel": 182, "annuel": 365}
    assert interval(frequence) == timedelta(days=days[frequence.value])


def test_twelve_monthly_occurrences_drift_from_calendar_months_by_design() -> None:
    due = at(2026, 1, 15, 8)
    for _ in range(12):
        due += interval(Frequence.mensuel)
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
