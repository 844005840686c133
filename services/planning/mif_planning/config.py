"""Settings of the planning service (`MIF_PLANNING_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings


class PlanningSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_PLANNING_", extra="ignore")
    service_name: ClassVar[str] = "planning"

    # The assets service, asked about an equipment missing from the local replica when a plan is
    # created (`MIF_PLANNING_ASSETS_URL`, or suite-wide `MIF_ASSETS_URL`). auth is `auth_url`.
    assets_url: str = "http://127.0.0.1:8002"
    # Where the gateway is reachable from outside: the iCalendar feed URLs handed out start with it.
    public_url: str = "http://127.0.0.1:8000"

    # Preventive scheduler (DOMAIN.md §5): how often due plans are looked for and how many plans one pass
    # handles. A plan that missed several occurrences generates only the most recent one; the skipped ones
    # are written to its history one row each, up to `scheduler_skipped_history_cap`, the older ones in
    # one summary row.
    scheduler_interval_seconds: float = Field(default=60.0, gt=0, le=3600)
    scheduler_batch_size: int = Field(default=200, ge=1, le=10_000)
    scheduler_skipped_history_cap: int = Field(default=100, ge=0, le=10_000)
    # Circuit breaker: a plan that would generate more occurrences than this in an hour (re-dated again
    # and again, say) is suspended, and `planning.plan.suspended.v1` tells the managers.
    max_occurrences_per_plan_per_hour: int = Field(default=6, ge=1, le=10_000)
    # A `planning.occurrence.reminder.v1` goes out this long before an occurrence's due date (0: never).
    reminder_lead_minutes: int = Field(default=1440, ge=0, le=60 * 24 * 90)
    # An occurrence whose intervention is not closed by the next due date, or this long after its own
    # due date if sooner, is overdue: the plan goes `en_retard` and `planning.plan.overdue.v1` is sent.
    overdue_grace_minutes: int = Field(default=7 * 24 * 60, ge=1, le=60 * 24 * 400)

    # Usage plans (DOMAIN.md §10): `prochaine_date_estimee` is forecast from a least-squares fit of the
    # counter's accumulated usage against time over this many days behind its latest reading. The
    # readings of the meters a usage or rate rule watches are kept that long (rate windows are at most
    # a day), pruned as batches arrive.
    prevision_fenetre_jours: int = Field(default=14, ge=1, le=366)

    # The window of the iCalendar feed, around now.
    ical_past_days: int = Field(default=30, ge=0, le=366)
    ical_future_days: int = Field(default=180, ge=1, le=731)
