"""`auth.sign_in_attempts.failed.v1`: someone is guessing a user's password. The user is told once, in-app
and by e-mail at once (a real SMTP server receives it; not a digest)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mif_auth.testing import sign_in_alert_data
from mif_notifications.delivery import DeliverySender
from mif_notifications.testing import SmtpSink, parts, to_address

Deliver = Callable[..., Awaitable[bool]]
Rows = Callable[[int], Awaitable[list[dict[str, Any]]]]
ALERT = "auth.sign_in_attempts.failed.v1"


async def test_the_owner_is_told_once_in_app_and_by_email(
    deliver: Deliver,
    sender: DeliverySender,
    smtp_sink: SmtpSink,
    make_user: Callable[..., Awaitable[dict[str, Any]]],
    notifications_of: Rows,
) -> None:
    await make_user(905, "admin", email="salma@mif.ma", full_name="Salma Bennani")
    await make_user(906, "responsable")
    data = sign_in_alert_data(905)
    event_id = str(uuid.uuid4())
    assert await deliver(ALERT, data, event_id=event_id)
    assert not await deliver(ALERT, data, event_id=event_id)  # the same event delivered again
    assert await deliver(ALERT, data)  # the same fact republished under another id: handled, nobody told twice
    told = [n for n in await notifications_of(905) if n["event_type"] == ALERT]
    assert len(told) == 1
    notice = told[0]
    assert (notice["type"], notice["canal"], notice["lue"]) == ("information", "email", False)
    assert notice["titre"] == "Tentatives de connexion échouées sur votre compte"
    assert "5 tentatives de connexion" in notice["contenu"] and "depuis 3 adresses" in notice["contenu"]
    assert "15 dernières minutes" in notice["contenu"]
    assert [(d["canal"], d["statut"]) for d in notice["deliveries"]] == [("email", "pending")]
    # Nobody else hears of it.
    assert [n for n in await notifications_of(906) if n["event_type"] == ALERT] == []
    # E-mailed at once, on its own (the two welcomes and the notice).
    assert await sender.send_due() == 3
    message = smtp_sink.wait_for(lambda m: "Tentatives de connexion" in str(m["Subject"]))
    assert to_address(message) == "salma@mif.ma"
    assert message["Subject"] == "[MIF] Tentatives de connexion échouées sur votre compte"
    body, html = parts(message)
    assert "Bonjour Salma Bennani," in body
    assert "5 tentatives de connexion" in body and "changez votre mot de passe" in body
    assert "5 tentatives de connexion" in html
    assert await sender.send_due() == 0
    assert len([m for m in smtp_sink.messages if "Tentatives de connexion" in str(m["Subject"])]) == 1
    # The next window's notice (auth publishes one per window) is a new one.
    next_window = datetime.now(UTC) + timedelta(minutes=16)
    assert await deliver(ALERT, sign_in_alert_data(905, failures=7, addresses=1, occurred_at=next_window))
    told = [n for n in await notifications_of(905) if n["event_type"] == ALERT]
    assert len(told) == 2
    assert "7 tentatives de connexion" in told[1]["contenu"] and "depuis une adresse" in told[1]["contenu"]


async def test_a_deactivated_user_is_not_told(
    deliver: Deliver, make_user: Callable[..., Awaitable[dict[str, Any]]], notifications_of: Rows
) -> None:
    user = await make_user(907, "technicien")
    assert await deliver("auth.user.deactivated.v1", {**user, "is_active": False})
    assert await deliver(ALERT, sign_in_alert_data(907))
    assert [n for n in await notifications_of(907) if n["event_type"] == ALERT] == []
