"""reports' export jobs ending (`reports.export.completed.v1`, `reports.export.failed.v1`) through the real
consumer path: the requester alone is told, once, in-app and on the channels their preferences choose (a
real SMTP server receives the e-mail), with a link to the job's page."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_notifications.delivery import DeliverySender
from mif_notifications.testing import SmtpSink, parts, to_address
from mif_reports.testing import export_completed_data, export_failed_data

Deliver = Callable[..., Awaitable[bool]]
MakeUser = Callable[..., Awaitable[dict[str, Any]]]
Rows = Callable[[int], Awaitable[list[dict[str, Any]]]]

COMPLETED = "reports.export.completed.v1"
FAILED = "reports.export.failed.v1"
# 17:30 UTC is 18:30 in Casablanca (UTC+1 outside Ramadan).
EXPIRE_LE = datetime(2026, 12, 5, 17, 30, tzinfo=UTC)


async def told(rows: Rows, user_id: int) -> list[dict[str, Any]]:
    return [r for r in await rows(user_id) if r["type"] in ("rapport_pret", "rapport_echoue")]


async def test_the_requester_alone_is_told_once_that_the_file_is_ready(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows, db_session: AsyncSession
) -> None:
    requester, colleague, manager = 1201, 1202, 1203
    await make_user(requester, "technicien")
    await make_user(colleague, "technicien")
    await make_user(manager, "responsable")
    data = export_completed_data(41, requester, expire_le=EXPIRE_LE)
    event_id = str(uuid.uuid4())
    assert await deliver(COMPLETED, data, event_id=event_id) is True
    assert await deliver(COMPLETED, data, event_id=event_id) is False  # redelivered: the inbox skips it
    assert await deliver(COMPLETED, data)  # republished under another id: handled, nobody told twice

    [row] = await told(notifications_of, requester)
    assert row["type"] == "rapport_pret"
    assert row["titre"] == "Rapport prêt : interventions (XLSX)"
    assert row["contenu"] == (
        "Votre export interventions (XLSX) est prêt : « interventions-2026-12-04.xlsx », 12\u00a0000 lignes. "
        "Vous pouvez le télécharger jusqu'au 05/12/2026 à 18:30. Télécharger : /api/v1/rapports/jobs/41"
    )
    assert row["lien"] == "/api/v1/rapports/jobs/41" and row["intervention_id"] is None
    assert row["event_id"] == event_id
    # E-mail is on by default: one delivery, at once (not in a digest).
    assert row["deliveries"] == [{"canal": "email", "statut": "pending", "attempts": 0, "last_error": None}]
    for nobody in (colleague, manager):
        assert await told(notifications_of, nobody) == []
    deliveries = await db_session.scalar(
        text("SELECT count(*) FROM delivery WHERE notification_id = :n"), {"n": row["id"]}
    )
    assert deliveries == 1


async def test_the_email_says_what_is_ready_until_when_and_links_to_the_job(
    deliver: Deliver, make_user: MakeUser, sender: DeliverySender, smtp_sink: SmtpSink
) -> None:
    await make_user(1211, "responsable", email="karim@mif.ma", full_name="Karim Alaoui")
    data = export_completed_data(42, 1211, type="pieces", format="csv", nom_fichier="pieces.csv", lignes=1)
    await deliver(COMPLETED, data | {"expire_le": EXPIRE_LE.isoformat()})
    assert await sender.send_due() == 2  # the welcome and the notice
    message = smtp_sink.wait_for(lambda m: "Rapport prêt" in str(m["Subject"]))
    assert to_address(message) == "karim@mif.ma"
    assert message["Subject"] == "[MIF] Rapport prêt : pièces (CSV)"
    body, html = parts(message)
    assert "Bonjour Karim Alaoui," in body
    assert "« pieces.csv », 1 ligne. Vous pouvez le télécharger jusqu'au 05/12/2026 à 18:30." in body
    assert "Télécharger le fichier : http://127.0.0.1:8000/api/v1/rapports/jobs/42" in body
    assert 'href="http://127.0.0.1:8000/api/v1/rapports/jobs/42"' in html and "Voir l'intervention" not in body
    assert await sender.send_due() == 0  # nothing is sent twice


async def test_without_email_in_the_preferences_the_notice_stays_in_app(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows, db_session: AsyncSession, sender: DeliverySender
) -> None:
    await make_user(1221, "technicien")
    await db_session.execute(
        text("INSERT INTO preference (user_id, canal, enabled) VALUES (1221, 'email', false), (1221, 'log', true)")
    )
    await deliver(COMPLETED, export_completed_data(43, 1221))
    [row] = await told(notifications_of, 1221)
    assert row["canal"] == "log"
    assert [(d["canal"], d["statut"]) for d in row["deliveries"]] == [("log", "pending")]


async def test_a_failed_export_tells_the_requester_the_error(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows, sender: DeliverySender, smtp_sink: SmtpSink
) -> None:
    await make_user(1231, "admin", email="salma@mif.ma", full_name="Salma Bennani")
    await make_user(1232, "admin")
    event_id = str(uuid.uuid4())
    data = export_failed_data(44, 1231)
    assert await deliver(FAILED, data, event_id=event_id)
    assert not await deliver(FAILED, data, event_id=event_id)
    [row] = await told(notifications_of, 1231)
    assert row["type"] == "rapport_echoue"
    assert row["titre"] == "Rapport échoué : rapport mensuel (PDF)"
    assert row["contenu"] == (
        "Votre export rapport mensuel (PDF) n'a pas pu être produit. Erreur : Le disque des exports est plein. "
        "Vous pouvez relancer l'export. Voir l'export : /api/v1/rapports/jobs/44"
    )
    assert await told(notifications_of, 1232) == []
    assert await sender.send_due() == 3  # two welcomes and the notice
    message = smtp_sink.wait_for(lambda m: "Rapport échoué" in str(m["Subject"]))
    assert to_address(message) == "salma@mif.ma"
    assert message["Subject"] == "[MIF] Rapport échoué : rapport mensuel (PDF)"
    body, html = parts(message)
    assert "Erreur : Le disque des exports est plein." in body
    assert "Voir l'export : http://127.0.0.1:8000/api/v1/rapports/jobs/44" in body
    assert 'href="http://127.0.0.1:8000/api/v1/rapports/jobs/44"' in html


async def test_a_requester_unknown_to_the_replica_is_told_in_app_and_a_deactivated_one_not_at_all(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows
) -> None:
    # As for every per-user fact: in-app now, the e-mail waiting for the address auth will send.
    await deliver(COMPLETED, export_completed_data(45, 1241))
    [row] = await told(notifications_of, 1241)
    assert row["titre"] == "Rapport prêt : interventions (XLSX)"
    assert [(d["canal"], d["statut"]) for d in row["deliveries"]] == [("email", "pending")]
    user = await make_user(1242, "technicien")
    await deliver("auth.user.deactivated.v1", {**user, "is_active": False})
    await deliver(FAILED, export_failed_data(46, 1242))
    assert await told(notifications_of, 1242) == []


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        (COMPLETED, {"job_id": 47, "user_id": 1251}),
        (COMPLETED, {**export_completed_data(47, 1251), "expire_le": "2026-12-05T17:30:00"}),  # no time zone
        (COMPLETED, export_completed_data(47, 1251, chemin="https://ailleurs.example/jobs/47")),  # not our path
        (COMPLETED, export_completed_data(47, 1251, chemin="//ailleurs.example/jobs/47")),
        (FAILED, export_failed_data(47, 0)),
    ],
)
async def test_a_malformed_event_is_permanent_and_writes_nothing(
    deliver: Deliver, db_session: AsyncSession, event_type: str, data: dict[str, Any]
) -> None:
    event_id = str(uuid.uuid4())
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver(event_type, data, event_id=event_id)
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}) == 0
    assert await db_session.scalar(text("SELECT count(*) FROM notification WHERE user_id = 1251")) == 0
