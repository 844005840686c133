"""E-mails: rendering (Jinja2, one text and one HTML template per notification type, French) and
sending over SMTP with aiosmtplib."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiosmtplib
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from mif_notifications.config import NotificationsSettings
from mif_notifications.messages import format_date
from mif_notifications.models import TypeNotification

LIBELLES = {
    TypeNotification.affectation: "Affectation",
    TypeNotification.cloture: "Clôture",
    TypeNotification.rappel: "Rappel",
    TypeNotification.retard: "Retard",
    TypeNotification.information: "Information",
}
# Subject line per type; `titre` is the notification's title.
SUBJECTS = {
    TypeNotification.affectation: "[MIF] Affectation : {titre}",
    TypeNotification.cloture: "[MIF] Clôture : {titre}",
    TypeNotification.rappel: "[MIF] Rappel : {titre}",
    TypeNotification.retard: "[MIF] Retard : {titre}",
    TypeNotification.information: "[MIF] {titre}",
}

_environment = Environment(
    loader=PackageLoader("mif_notifications", "templates"),
    # HTML templates escape every value (titles come from users); text templates stay as written.
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
)


@dataclass(frozen=True, slots=True)
class Email:
    """What one notification e-mail says, to whom."""

    notification_id: int
    to_address: str
    to_name: str
    type: TypeNotification
    titre: str
    contenu: str
    intervention_id: int | None
    date_envoi: datetime


def subject(email: Email) -> str:
    return SUBJECTS[email.type].format(titre=email.titre).replace("\n", " ")


def render(email: Email, *, settings: NotificationsSettings) -> tuple[str, str]:
    """The text and HTML bodies of an e-mail."""
    base = settings.app_url.rstrip("/")
    context = {
        "destinataire": email.to_name,
        "titre": email.titre,
        "contenu": email.contenu,
        "libelle": LIBELLES[email.type],
        "intervention_id": email.intervention_id,
        "lien": f"{base}/interventions/{email.intervention_id}" if email.intervention_id else base,
        "date_envoi": format_date(email.date_envoi),
    }
    text = _environment.get_template(f"{email.type.value}.txt").render(context)
    html = _environment.get_template(f"{email.type.value}.html").render(context)
    return text, html


def build_message(email: Email, *, settings: NotificationsSettings) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML)."""
    text, html = render(email, settings=settings)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = Address(display_name=email.to_name, addr_spec=email.to_address)
    message["Subject"] = subject(email)
    message["Date"] = format_datetime(email.date_envoi)
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "mif.ma"
    message["Message-ID"] = make_msgid(idstring=f"notification-{email.notification_id}", domain=domain)
    message["X-MIF-Notification-Id"] = str(email.notification_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class SendFailure(Exception):
    """One e-mail was not accepted. `permanent`: retrying cannot help (a 5xx refusal)."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.permanent = permanent


def _failure(exc: BaseException) -> SendFailure:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return SendFailure(f"recipient refused: {exc}", permanent=bool(codes) and all(c >= 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return SendFailure(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500)
    if isinstance(exc, TimeoutError):
        return SendFailure("SMTP server did not answer in time", permanent=False)
    return SendFailure(f"{type(exc).__name__}: {exc}", permanent=False)


async def send_all(messages: Sequence[EmailMessage], *, settings: NotificationsSettings) -> list[SendFailure | None]:
    """Send over one SMTP connection; one outcome per message (None: accepted by the server). A lost
    connection fails the messages not sent yet (they are retried later)."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    smtp = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=password,
        use_tls=settings.smtp_use_tls,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout,
    )
    outcomes: list[SendFailure | None] = []
    try:
        async with asyncio.timeout(settings.smtp_timeout):
            await smtp.connect()
    except Exception as exc:
        failure = _failure(exc)
        failure.permanent = False  # an unreachable or refusing server is an outage, not this message
        return [failure for _ in messages]
    try:
        for message in messages:
            if not smtp.is_connected:
                outcomes.append(SendFailure("SMTP connection lost", permanent=False))
                continue
            try:
                async with asyncio.timeout(settings.smtp_timeout):
                    await smtp.send_message(message)
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(_failure(exc))
                if not isinstance(exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused):
                    smtp.close()  # a timeout or a broken exchange: the connection's state is unknown
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(settings.smtp_timeout):
                await smtp.quit()
        smtp.close()
    return outcomes
