"""App factory of the notifications service: `uvicorn --factory mif_notifications.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from mif_common.app import ServiceParts, create_service_app
from mif_notifications.api import router
from mif_notifications.config import NotificationsSettings
from mif_notifications.delivery import DeliverySender
from mif_notifications.handlers import HANDLERS
from mif_notifications.stream import NotificationHub, chain_shutdown_signals


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()

    async def build_parts(app: FastAPI) -> None:
        sender = DeliverySender(sessionmaker=app.state.sessionmaker, settings=settings)
        app.state.sender = sender
        # One LISTEN connection per process: wakes the live streams and the sender.
        app.state.hub = NotificationHub(
            app.state.engine, on_new=sender.wake.set, listen_url=settings.direct_database_url
        )

    async def live_stream_hub(app: FastAPI) -> None:
        hub: NotificationHub = app.state.hub
        restore = chain_shutdown_signals(hub.stop)
        try:
            await hub.run()
        finally:
            hub.stop()
            restore()

    async def delivery_sender(app: FastAPI) -> None:
        sender: DeliverySender = app.state.sender
        await sender.run()

    return create_service_app(
        settings,
        ServiceParts(
            title="MIF notifications service",
            description=(
                "In-app notifications (list, read, delete, unread count, live stream over Server-Sent Events), "
                "e-mail delivery over SMTP with retries (lateness: one digest per recipient and interval), per-user "
                "channel preferences, and managers' manual "
                "messages. Consumes `auth.user.*.v1`, `planning.technicien.*.v1`, "
                "`interventions.intervention.*.v1`, `planning.occurrence.reminder.v1`, `planning.plan.overdue.v1`, "
                "`planning.plan.suspended.v1`, `planning.occurrence.due.v1` (corrective: a rule triggered), "
                "`documents.document.uploaded.v1`, `auth.sign_in_attempts.failed.v1`, `inventory.stock.low.v1`, "
                "`reports.export.completed|failed.v1`; publishes "
                "`notifications.notification.sent|failed.v1`."
            ),
            routers=[router],
            handlers=HANDLERS,
            on_startup=[build_parts],
            background_jobs=[live_stream_hub, delivery_sender],
        ),
    )
