from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mif_auth.testing import user_data
from mif_common.config import ServiceSettings
from mif_common.testing.events import Deliver
from mif_common.testing.plugin import ServiceUnderTest
from mif_notifications.config import NotificationsSettings
from mif_notifications.delivery import DeliverySender
from mif_notifications.handlers import HANDLERS
from mif_notifications.main import create_app
from mif_notifications.testing import SmtpSink
from mif_planning.testing import technicien_data

Headers = dict[str, str]


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server for the whole session (tests clear it and may stop/start it)."""
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(autouse=True)
def _sink_running(smtp_sink: SmtpSink) -> Iterator[None]:
    smtp_sink.clear()
    smtp_sink.refuse.clear()
    yield
    smtp_sink.start()  # a test that took it down does not leave it down


@pytest.fixture(scope="session")
def mif_service(smtp_sink: SmtpSink) -> ServiceUnderTest:
    return ServiceUnderTest(
        "notifications",
        NotificationsSettings,
        create_app,
        handlers=HANDLERS,
        settings_overrides={
            "smtp_host": smtp_sink.host,
            "smtp_port": smtp_sink.port,
            "smtp_timeout": 3.0,
            "email_max_attempts": 3,
            "email_backoff_base": 2.0,
        },
    )


@pytest.fixture
def sender(db_sessionmaker: async_sessionmaker[AsyncSession], mif_settings: ServiceSettings) -> DeliverySender:
    """The real sender, one pass at a time (`await sender.send_due()`)."""
    assert isinstance(mif_settings, NotificationsSettings)
    return DeliverySender(sessionmaker=db_sessionmaker, settings=mif_settings)


@pytest.fixture
def make_user(deliver: Deliver) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Put a user in the replica through `auth.user.created.v1` (which also sends the welcome)."""

    async def make(user_id: int, role: str = "technicien", **extra: Any) -> dict[str, Any]:
        data = user_data(user_id, role, **extra)
        assert await deliver("auth.user.created.v1", data)
        return data

    return make


@pytest.fixture
def make_technicien(deliver: Deliver) -> Callable[..., Awaitable[None]]:
    """Put a technician profile in the replica through `planning.technicien.created.v1`."""

    async def make(technicien_id: int, user_id: int, **extra: Any) -> None:
        assert await deliver("planning.technicien.created.v1", technicien_data(technicien_id, user_id, **extra))

    return make


@pytest.fixture
def notifications_of(db_session: AsyncSession) -> Callable[[int], Awaitable[list[dict[str, Any]]]]:
    """A user's notifications straight from the table, oldest first (with their deliveries)."""

    async def rows(user_id: int) -> list[dict[str, Any]]:
        result = await db_session.execute(
            sa.text(
                "SELECT n.*, coalesce(json_agg(json_build_object('canal', d.canal, 'statut', d.statut, 'attempts',"
                " d.attempts, 'last_error', d.last_error) ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '[]')"
                " AS deliveries FROM notification n LEFT JOIN delivery d ON d.notification_id = n.id"
                " WHERE n.user_id = :u GROUP BY n.id ORDER BY n.id"
            ),
            {"u": user_id},
        )
        return [dict(r._mapping) for r in result]

    return rows


@pytest.fixture
def outbox_of(db_session: AsyncSession) -> Callable[[str], Awaitable[list[dict[str, Any]]]]:
    """Envelopes of one type in the outbox (visible inside the test's transaction), oldest first."""

    async def rows(event_type: str) -> list[dict[str, Any]]:
        result = await db_session.execute(
            sa.text("SELECT envelope FROM outbox WHERE type = :t ORDER BY created_at"), {"t": event_type}
        )
        return [r.envelope for r in result]

    return rows
