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
    TypeNotification.stock_bas: "Stock bas",
    TypeNotification.rapport_pret: "Rapport prêt",
    TypeNotification.rapport_echoue: "Rapport échoué",
}
# Subject line per type; `titre` is the notification's title.
SUBJECTS = {
    TypeNotification.affectation: "[MIF] Affectation : {titre}",
    TypeNotification.cloture: "[MIF] Clôture : {titre}",
    TypeNotification.rappel: "[MIF] Rappel : {titre}",
    TypeNotification.retard: "[MIF] Retard : {titre}",
    TypeNotification.information: "[MIF] {titre}",
    TypeNotification.stock_bas: "[MIF] {titre}",  # the title already starts with "Stock bas :"
    TypeNotification.rapport_pret: "[MIF] {titre}",  # "Rapport prêt : ..."
    TypeNotification.rapport_echoue: "[MIF] {titre}",  # "Rapport échoué : ..."
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
    lien: str | None = None  # an application path (`Message.lien`)


def subject(email: Email) -> str:
    return SUBJECTS[email.type].format(titre=email.titre).replace("\n", " ")


def _lien(email: Email, base: str) -> str:
    """What the e-mail opens: the intervention, else the notification's own path, else the application."""
    if email.intervention_id:
        return f"{base}/interventions/{email.intervention_id}"
    return f"{base}{email.lien}" if email.lien else base


def render(email: Email, *, settings: NotificationsSettings) -> tuple[str, str]:
    """The text and HTML bodies of an e-mail."""
    base = settings.app_url.rstrip("/")
    context = {
        "destinataire": email.to_name,
        "titre": email.titre,
        "contenu": email.contenu,
        "libelle": LIBELLES[email.type],
        "intervention_id": email.intervention_id,
        "lien": _lien(email, base),
        # The frontend's root, for links that are not about an intervention (the parts to order).
        "app_url": base,
        "date_envoi": format_date(email.date_envoi),
    }
    text = _environment.get_template(f"{email.type.value}.txt").render(context)
    html = _environment.get_template(f"{email.type.value}.html").render(context)
    return text, html


def _message(
    *, to_name: str, to_address: str, subject_line: str, date: datetime, idstring: str, settings: NotificationsSettings
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = Address(display_name=to_name, addr_spec=to_address)
    message["Subject"] = subject_line
    message["Date"] = format_datetime(date)
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "mif.ma"
    message["Message-ID"] = make_msgid(idstring=idstring, domain=domain)
    return message


def build_message(email: Email, *, settings: NotificationsSettings) -> EmailMessage:
    """A multipart/alternative message (text first, then HTML)."""
    text, html = render(email, settings=settings)
    message = _message(
        to_name=email.to_name,
        to_address=email.to_address,
        subject_line=subject(email),
        date=email.date_envoi,
        idstring=f"notification-{email.notification_id}",
        settings=settings,
    )
    message["X-MIF-Notification-Id"] = str(email.notification_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


# --- the lateness digest ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One late item of a digest: a `retard` notification."""

    notification_id: int
    titre: str
    contenu: str
    intervention_id: int | None
    date_envoi: datetime


@dataclass(frozen=True, slots=True)
class Digest:
    """One recipient's late items, told in one e-mail."""

    user_id: int
    to_address: str
    to_name: str
    items: Sequence[DigestItem]
    date_envoi: datetime


def _elements(count: int) -> str:
    return f"{count} élément en retard" if count == 1 else f"{count} éléments en retard"


def digest_subject(digest: Digest) -> str:
    return f"[MIF] Retards : {_elements(len(digest.items))}"


def render_digest(digest: Digest, *, settings: NotificationsSettings) -> tuple[str, str]:
    """The text and HTML bodies of a digest: the first `digest_max_items` items, the others counted."""
    base = settings.app_url.rstrip("/")
    shown = digest.items[: settings.digest_max_items]
    context = {
        "destinataire": digest.to_name,
        "titre": _elements(len(digest.items)).capitalize(),
        "contenu": "Récapitulatif des retards signalés depuis le précédent envoi. Chacun figure aussi dans vos "
        "notifications MIF Maintenance.",
        "libelle": LIBELLES[TypeNotification.retard],
        "intervention_id": None,
        "lien": base,
        "date_envoi": format_date(digest.date_envoi),
        "items": [
            {
                "titre": item.titre,
                "contenu": item.contenu,
                "intervention_id": item.intervention_id,
                "lien": f"{base}/interventions/{item.intervention_id}" if item.intervention_id else base,
                "date": format_date(item.date_envoi),
            }
            for item in shown
        ],
        "autres": len(digest.items) - len(shown),
        "lien_notifications": f"{base}/notifications",
    }
    text = _environment.get_template("digest_retard.txt").render(context)
    html = _environment.get_template("digest_retard.html").render(context)
    return text, html


def build_digest_message(digest: Digest, *, settings: NotificationsSettings) -> EmailMessage:
    """One multipart/alternative message for all of a recipient's late items."""
    text, html = render_digest(digest, settings=settings)
    first = min(item.notification_id for item in digest.items)
    message = _message(
        to_name=digest.to_name,
        to_address=digest.to_address,
        subject_line=digest_subject(digest),
        date=digest.date_envoi,
        idstring=f"digest-{digest.user_id}-{first}",
        settings=settings,
    )
    message["X-MIF-Digest-Items"] = str(len(digest.items))
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
