"""The monthly sums of breakdowns (`panne_mois`): months are the company's calendar, DST included."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from mif_reports.pannes import per_month

PARIS = ZoneInfo("Europe/Paris")  # summer time from 29 March 2026, 01:00 UTC


def at(month: int, day: int, hour: int, microsecond: int = 0) -> datetime:
    return datetime(2026, month, day, hour, microsecond=microsecond, tzinfo=UTC)


def test_a_breakdown_counts_in_the_month_it_began_and_its_downtime_in_each_month_it_spans() -> None:
    # 29 March 00:00 UTC to 1 April 00:00 UTC: April begins at 31 March 22:00 UTC (midnight, summer time).
    assert per_month([(at(3, 29, 0), at(4, 1, 0))], PARIS) == {
        date(2026, 3, 1): (1, Decimal(70 * 3600)),
        date(2026, 4, 1): (0, Decimal(2 * 3600)),
    }


def test_months_add_up_exactly_to_the_microsecond() -> None:
    episodes = [(at(1, 31, 22, 250_000), at(3, 2, 1)), (at(2, 10, 8), at(2, 10, 9, 1))]
    months = per_month(episodes, PARIS)
    assert [n for n, _ in months.values()] == [1, 1, 0]
    total = sum(seconds for _, seconds in months.values())
    assert total == Decimal("2516399.75") + Decimal("3600.000001")
