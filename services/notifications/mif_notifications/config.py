"""Settings of the notifications service (`MIF_NOTIFICATIONS_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_NOTIFICATIONS_", extra="ignore")
    service_name: ClassVar[str] = "notifications"
    # The outbox relay's LISTEN connection, and the live stream's (mif_notifications.stream).
    listen_connections: ClassVar[int] = 2

    # SMTP relay (development: `python -m aiosmtpd -n -l 127.0.0.1:1025`, compose: Mailpit).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_from: str = "MIF Maintenance <no-reply@mif.ma>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # None: STARTTLS when the server offers it; true: required; false: never (a local catcher).
    smtp_starttls: bool | None = None
    # Implicit TLS from the first byte (port 465 relays).
    smtp_use_tls: bool = False
    # Upper bound of one SMTP exchange (connect, EHLO, auth, send), in seconds.
    smtp_timeout: float = Field(default=10.0, gt=0, le=120)

    # E-mail retries: attempt n failed → next attempt in min(max, base · 2^(n-1)) s; failed after max_attempts.
    email_max_attempts: int = Field(default=10, ge=1, le=50)
    email_backoff_base: float = Field(default=2.0, gt=0)
    email_max_backoff: float = Field(default=900.0, gt=0)
    # The sender is woken by each new notification; polling is the safety net (and the retry clock).
    sender_poll_interval: float = Field(default=1.0, gt=0)
    # After a wake-up, wait this long so that a burst of notifications shares one SMTP session.
    sender_batch_window: float = Field(default=0.2, ge=0, le=10)
    sender_batch_size: int = Field(default=20, ge=1, le=500)
    # Lateness (late interventions, overdue plan occurrences) is e-mailed in digests: one e-mail per
    # recipient once the oldest waiting item has waited this long (at most one digest per interval);
    # in-app notifications stay one per item. 0: at the sender's next pass.
    digest_interval_seconds: float = Field(default=900.0, ge=0, le=86_400)
    # Items listed in one digest e-mail (the others are counted, and are in the app).
    digest_max_items: int = Field(default=50, ge=1, le=1000)

    # Live stream: a comment line this often keeps proxies from closing an idle stream.
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    # Most notifications replayed at once after a reconnection (the rest follow in further batches).
    sse_batch_size: int = Field(default=100, ge=1, le=1000)

    # Link in e-mails (the frontend's address).
    app_url: str = "http://127.0.0.1:8000"

    @model_validator(mode="after")
    def _check_smtp(self) -> NotificationsSettings:
        if self.smtp_username and self.smtp_password is None:
            raise ValueError("smtp_password is required when smtp_username is set")
        if self.smtp_username:
            self.require_real_secret("smtp_password", self.smtp_password)
        return self
