"""inventory's low-stock alert (`inventory.stock.low.v1`) through the real consumer path: every active
manager is told in-app and by e-mail (at once, not in a digest), nobody else; a redelivery or a
republication of the same crossing tells nobody twice."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import user_data
from mif_notifications.delivery import DeliverySender
from mif_notifications.messages import format_quantite
from mif_notifications.testing import SmtpSink, parts, to_address

Deliver = Callable[..., Awaitable[bool]]
MakeUser = Callable[..., Awaitable[dict[str, Any]]]
Rows = Callable[[int], Awaitable[list[dict[str, Any]]]]

STOCK_LOW = "inventory.stock.low.v1"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def stock_low(piece_id: int = 31, **extra: Any) -> dict[str, Any]:
    """`data` of `inventory.stock.low.v1` as inventory's contract gives it (inventory's own example helper
    does not exist yet); quantities as JSON numbers or decimal strings, both are on the wire."""
    return {
        "piece_id": piece_id,
        "reference": "FLT-010",
        "nom": "Filtre à huile",
        "unite": "u",
        "disponible": 2,
        "stock_minimum": "5.000",
        "stock_maximum": 20,
        "a_commander": 18,
        "occurred_at": T0.isoformat(),
    } | extra


async def stock_alerts(rows: Rows, user_id: int) -> list[dict[str, Any]]:
    return [r for r in await rows(user_id) if r["type"] == "stock_bas"]


def test_quantities_are_written_the_french_way() -> None:
    assert format_quantite(Decimal("5.000")) == "5"
    assert format_quantite(Decimal("2.50")) == "2,5"
    assert format_quantite(Decimal("1234.5")) == "1\u00a0234,5"
    assert format_quantite(Decimal("1E+3")) == "1\u00a0000"
    assert format_quantite(Decimal("-0.25")) == "-0,25"


async def test_every_active_manager_is_told_in_app_and_by_email_and_nobody_else(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows
) -> None:
    responsable, admin, gone, technicien, client = 1101, 1102, 1103, 1104, 1105
    await make_user(responsable, "responsable")
    await make_user(admin, "admin")
    await make_user(gone, "responsable")
    await deliver("auth.user.deactivated.v1", user_data(gone, "responsable", is_active=False))
    await make_user(technicien, "technicien")
    await make_user(client, "client", client_id=4)
    assert await deliver(STOCK_LOW, stock_low(), event_id="evt-stock-31")

    for manager in (responsable, admin):
        [row] = await stock_alerts(notifications_of, manager)
        assert row["titre"] == "Stock bas : FLT-010 Filtre à huile"
        assert row["contenu"] == (
            "Le stock disponible de la pièce FLT-010 « Filtre à huile » est de 2 u, pour un minimum de 5 u. "
            "Quantité à commander : 18 u (pour revenir au maximum de 20 u). "
            "Voir les pièces à commander : /pieces/a-commander"
        )
        assert row["canal"] == "email" and row["intervention_id"] is None and row["event_id"] == "evt-stock-31"
        # E-mailed on its own, at once (not waiting for a digest).
        assert row["deliveries"] == [{"canal": "email", "statut": "pending", "attempts": 0, "last_error": None}]
    for nobody in (gone, technicien, client):
        assert await stock_alerts(notifications_of, nobody) == []


async def test_without_a_maximum_the_quantity_brings_it_back_to_the_minimum(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows
) -> None:
    await make_user(1111, "responsable")
    data = stock_low(32, unite="L", disponible="1.5", stock_minimum="4", stock_maximum=None, a_commander="2.5")
    await deliver(STOCK_LOW, data)
    [row] = await stock_alerts(notifications_of, 1111)
    assert (
        "est de 1,5 L, pour un minimum de 4 L. Quantité à commander : 2,5 L (pour revenir au minimum)."
        in (row["contenu"])
    )


async def test_a_redelivery_or_a_republication_tells_nobody_twice(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows, db_session: AsyncSession
) -> None:
    await make_user(1121, "responsable")
    event_id = str(uuid.uuid4())
    assert await deliver(STOCK_LOW, stock_low(33), event_id=event_id) is True
    assert await deliver(STOCK_LOW, stock_low(33), event_id=event_id) is False  # the same message again
    assert await deliver(STOCK_LOW, stock_low(33))  # the same crossing published again under another id
    [row] = await stock_alerts(notifications_of, 1121)
    deliveries = await db_session.scalar(
        text("SELECT count(*) FROM delivery WHERE notification_id = :n"), {"n": row["id"]}
    )
    assert deliveries == 1
    # A new crossing (the stock came back above the minimum, then fell again) is told again.
    assert await deliver(STOCK_LOW, stock_low(33, occurred_at=(T0 + timedelta(days=3)).isoformat()))
    assert len(await stock_alerts(notifications_of, 1121)) == 2


async def test_the_email_names_the_part_and_links_to_the_parts_to_order(
    deliver: Deliver, make_user: MakeUser, sender: DeliverySender, smtp_sink: SmtpSink
) -> None:
    await make_user(1131, "admin", email="achats@mif.ma", full_name="Nadia Berrada")
    await deliver(STOCK_LOW, stock_low(34))
    assert await sender.send_due() == 2  # the welcome and the alert
    message = smtp_sink.wait_for(lambda m: "Stock bas" in m["Subject"])
    assert to_address(message) == "achats@mif.ma"
    assert message["Subject"] == "[MIF] Stock bas : FLT-010 Filtre à huile"
    body, html = parts(message)
    assert "Bonjour Nadia Berrada," in body and "Quantité à commander : 18 u" in body
    assert "http://127.0.0.1:8000/pieces/a-commander" in body
    assert 'href="http://127.0.0.1:8000/pieces/a-commander"' in html and "Voir l'intervention" not in body
    assert await sender.send_due() == 0  # nothing is sent twice


@pytest.mark.parametrize(
    "data",
    [
        {"piece_id": 35},
        stock_low(35, occurred_at="2026-03-01T08:00:00"),  # no time zone
        stock_low(35, disponible="beaucoup"),
    ],
)
async def test_a_malformed_alert_is_permanent_and_writes_nothing(
    deliver: Deliver, make_user: MakeUser, db_session: AsyncSession, data: dict[str, Any]
) -> None:
    await make_user(1141, "responsable")
    event_id = str(uuid.uuid4())
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver(STOCK_LOW, data, event_id=event_id)
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}) == 0
    assert await db_session.scalar(text("SELECT count(*) FROM notification WHERE type = 'stock_bas'")) == 0
