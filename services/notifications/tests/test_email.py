"""E-mail delivery with a real SMTP server (aiosmtpd): the message received (To, Subject, text and
HTML parts), retries with back-off while the server is down, giving up, permanent refusals, and the
`sent` / `failed` events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import user_data
from mif_interventions.testing import intervention_data
from mif_notifications import mail, service
from mif_notifications.config import NotificationsSettings
from mif_notifications.delivery import DeliverySender
from mif_notifications.messages import Message
from mif_notifications.models import TypeNotification
from mif_notifications.testing import SmtpSink, parts, to_address
from mif_planning.testing import technicien_data

Deliver = Callable[..., Awaitable[bool]]
Outbox = Callable[[str], Awaitable[list[dict[str, Any]]]]


async def delivery(session: AsyncSession, notification_id: int, canal: str = "email") -> Any:
    return (
        await session.execute(
            text("SELECT * FROM delivery WHERE notification_id = :n AND canal = :c"), {"n": notification_id, "c": canal}
        )
    ).one()


async def make_due(session: AsyncSession) -> None:
    """Skip the back-off wait (the clock of the test is faster than the sender's)."""
    await session.execute(text("UPDATE delivery SET next_attempt_at = now() - interval '1 second'"))


async def notification_id(session: AsyncSession, user_id: int, event_type: str) -> int:
    value = await session.scalar(
        text("SELECT id FROM notification WHERE user_id = :u AND event_type = :t"), {"u": user_id, "t": event_type}
    )
    assert value is not None
    return int(value)


async def test_an_assignment_email_is_received_with_text_and_html(
    deliver: Deliver, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession, outbox_of: Outbox
) -> None:
    await deliver("auth.user.created.v1", user_data(901, full_name="Youssef Alami", email="youssef@mif.ma"))
    await deliver("planning.technicien.created.v1", technicien_data(31, 901))
    data = intervention_data(950, "affectee", technicien_id=31, titre="Fuite d'huile <compresseur>", urgence=True)
    await deliver("interventions.intervention.assigned.v1", data)
    assert await sender.send_due() == 2  # the welcome and the assignment
    message = smtp_sink.wait_for(lambda m: "Affectation" in m["Subject"])
    assert to_address(message) == "youssef@mif.ma"
    assert message["To"].addresses[0].display_name == "Youssef Alami"
    assert message["Subject"] == "[MIF] Affectation : Nouvelle intervention affectée : Fuite d'huile <compresseur>"
    assert message["From"] == "MIF Maintenance <no-reply@mif.ma>"
    assert message.get_content_type() == "multipart/alternative"
    body, html = parts(message)
    assert "Bonjour Youssef Alami," in body
    assert "L'intervention n°950 « Fuite d'huile <compresseur> » vous a été affectée" in body
    assert "Elle est signalée urgente." in body
    assert "http://127.0.0.1:8000/interventions/950" in body
    # The HTML part escapes what users wrote.
    assert "Fuite d&#39;huile &lt;compresseur&gt;" in html and "<compresseur>" not in html
    assert 'href="http://127.0.0.1:8000/interventions/950"' in html
    nid = await notification_id(db_session, 901, "interventions.intervention.assigned.v1")
    assert message["X-MIF-Notification-Id"] == str(nid)
    row = await delivery(db_session, nid)
    assert (row.statut, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None
    sent = [e for e in await outbox_of("notifications.notification.sent.v1") if e["subject"] == str(nid)]
    assert len(sent) == 1
    assert sent[0]["data"]["canal"] == "email" and sent[0]["data"]["type"] == "affectation"
    assert sent[0]["data"]["source_event_type"] == "interventions.intervention.assigned.v1"
    assert sent[0]["causationid"] == sent[0]["data"]["source_event_id"]
    assert await sender.send_due() == 0  # nothing is sent twice


async def test_smtp_down_then_up_is_delivered_later(
    deliver: Deliver, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession, outbox_of: Outbox
) -> None:
    await deliver("auth.user.created.v1", user_data(902, email="karim@mif.ma"))
    nid = await notification_id(db_session, 902, "auth.user.created.v1")
    smtp_sink.stop()
    assert await sender.send_due() == 1
    row = await delivery(db_session, nid)
    assert (row.statut, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("SMTPConnectError: ")
    # Back-off: the first retry waits `email_backoff_base` (2 s here), the second twice that. (now() is the
    # database's clock, fixed for the test's one transaction.)
    db_now = await db_session.scalar(text("SELECT now()"))
    assert row.next_attempt_at - db_now == timedelta(seconds=2)
    assert await sender.send_due() == 0  # not due yet
    await make_due(db_session)
    assert await sender.send_due() == 1
    row = await delivery(db_session, nid)
    assert row.attempts == 2
    assert row.next_attempt_at - db_now == timedelta(seconds=4)
    assert smtp_sink.messages == []
    smtp_sink.start()
    await make_due(db_session)
    assert await sender.send_due() == 1
    message = smtp_sink.wait_for(lambda m: to_address(m) == "karim@mif.ma")
    assert message["Subject"] == "[MIF] Bienvenue sur MIF Maintenance"
    row = await delivery(db_session, nid)
    assert (row.statut, row.attempts, row.last_error) == ("sent", 3, None)
    assert [e["data"]["attempts"] for e in await outbox_of("notifications.notification.sent.v1")] == [3]


async def test_given_up_after_the_last_attempt(
    deliver: Deliver, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession, outbox_of: Outbox
) -> None:
    await deliver("auth.user.created.v1", user_data(903))
    nid = await notification_id(db_session, 903, "auth.user.created.v1")
    smtp_sink.stop()
    for _ in range(3):  # email_max_attempts = 3 in these tests
        await make_due(db_session)
        assert await sender.send_due() == 1
    row = await delivery(db_session, nid)
    assert (row.statut, row.attempts) == ("failed", 3)
    await make_due(db_session)
    assert await sender.send_due() == 0
    [failed] = await outbox_of("notifications.notification.failed.v1")
    assert failed["data"]["notification_id"] == nid and failed["data"]["attempts"] == 3
    assert failed["data"]["error"] == row.last_error
    assert await outbox_of("notifications.notification.sent.v1") == []


async def test_a_permanent_refusal_fails_at_once(
    deliver: Deliver, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    smtp_sink.refuse.add("gone@mif.ma")
    await deliver("auth.user.created.v1", user_data(904, email="gone@mif.ma"))
    await deliver("auth.user.created.v1", user_data(905, email="here@mif.ma"))
    assert await sender.send_due() == 2
    refused = await delivery(db_session, await notification_id(db_session, 904, "auth.user.created.v1"))
    assert (refused.statut, refused.attempts) == ("failed", 1)
    assert "550" in refused.last_error
    # The other message of the batch went through on the same connection.
    accepted = await delivery(db_session, await notification_id(db_session, 905, "auth.user.created.v1"))
    assert accepted.statut == "sent"
    assert [to_address(m) for m in smtp_sink.messages] == ["here@mif.ma"]


async def test_a_recipient_deactivated_before_sending_gets_nothing(
    deliver: Deliver, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    await deliver("auth.user.created.v1", user_data(906))
    await deliver("auth.user.deactivated.v1", user_data(906, is_active=False))
    assert await sender.send_due() == 1
    row = await delivery(db_session, await notification_id(db_session, 906, "auth.user.created.v1"))
    assert (row.statut, row.last_error) == ("failed", "the recipient's account is deactivated")
    assert smtp_sink.messages == []


async def test_an_address_not_known_yet_is_waited_for(
    deliver: Deliver, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    await deliver("planning.technicien.created.v1", technicien_data(32, 907))
    await deliver("interventions.intervention.assigned.v1", intervention_data(951, "affectee", technicien_id=32))
    nid = await notification_id(db_session, 907, "interventions.intervention.assigned.v1")
    assert await sender.send_due() == 1
    row = await delivery(db_session, nid)
    assert (row.statut, row.last_error) == ("pending", "no e-mail address known for user 907 yet")
    await deliver("auth.user.updated.v1", user_data(907, email="late@mif.ma"))
    await make_due(db_session)
    assert await sender.send_due() == 1
    assert to_address(smtp_sink.wait_for(lambda m: True)) == "late@mif.ma"


async def test_the_log_channel_writes_a_line(
    sender: DeliverySender, db_session: AsyncSession, deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    await deliver("auth.user.created.v1", user_data(908))
    await db_session.execute(text("INSERT INTO preference (user_id, canal, enabled) VALUES (908, 'log', true)"))
    await db_session.execute(text("UPDATE delivery SET statut = 'sent'"))  # the welcome is not the point here
    message = Message(TypeNotification.rappel, "Rappel", "Visite annuelle demain.")
    [nid] = await service.notify(db_session, user_ids=[908], message=message, origin=service.Origin())
    await db_session.commit()
    with caplog.at_level("INFO", logger="mif_notifications.delivery"):
        assert await sender.send_due() == 2
    assert f"notification {nid} for user 908 [rappel] Rappel: Visite annuelle demain." in caplog.text
    assert (await delivery(db_session, nid, "log")).statut == "sent"


async def test_a_failure_never_blocks_the_business_flow(
    deliver: Deliver, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    # The handler only writes rows: with the SMTP server down, the event is handled all the same.
    smtp_sink.stop()
    await deliver("auth.user.created.v1", user_data(909))
    await deliver("planning.technicien.created.v1", technicien_data(33, 909))
    assert await deliver("interventions.intervention.assigned.v1", intervention_data(952, "affectee", technicien_id=33))
    assert await db_session.scalar(text("SELECT count(*) FROM notification WHERE user_id = 909")) == 2


@pytest.mark.parametrize("kind", list(TypeNotification))
def test_every_type_has_text_html_and_subject(kind: TypeNotification, mif_settings: NotificationsSettings) -> None:
    email = mail.Email(
        notification_id=1,
        to_address="a@mif.ma",
        to_name="Amine",
        type=kind,
        titre="Titre é",
        contenu="Contenu à lire",
        intervention_id=3,
        date_envoi=datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
    )
    message = mail.build_message(email, settings=mif_settings)
    body, html = parts(message)
    assert "Bonjour Amine," in body and "Contenu à lire" in body and "01/05/2026 à 11:00" in body
    assert "<h1" in html and "Contenu à lire" in html
    assert "Titre é" in message["Subject"] and message["Subject"].startswith("[MIF]")


def test_backoff_grows_then_caps(mif_settings: NotificationsSettings) -> None:
    settings = mif_settings.model_copy(update={"email_backoff_base": 2.0, "email_max_backoff": 30.0})
    sender = DeliverySender(sessionmaker=None, settings=settings)  # type: ignore[arg-type]
    assert [sender.backoff(n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
