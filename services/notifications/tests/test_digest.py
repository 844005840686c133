"""Lateness is told once per item and e-mailed in digests: one e-mail per recipient and interval
(`digest_interval_seconds`) listing the late items, through a real SMTP server; in-app stays one
notification per item. And planning's circuit breaker (`planning.plan.suspended.v1`) reaches every
manager once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import user_data
from mif_common.db import make_engine, make_sessionmaker
from mif_interventions.testing import intervention_data
from mif_notifications import service
from mif_notifications.config import NotificationsSettings
from mif_notifications.delivery import DeliverySender
from mif_notifications.messages import Message
from mif_notifications.models import TypeNotification
from mif_notifications.testing import SmtpSink, parts, to_address
from mif_planning.testing import occurrence_data, overdue_data, suspended_data

Deliver = Callable[..., Awaitable[bool]]
MakeUser = Callable[..., Awaitable[dict[str, Any]]]
MakeTech = Callable[..., Awaitable[None]]
Outbox = Callable[[str], Awaitable[list[dict[str, Any]]]]

LATE = "interventions.intervention.late.v1"


async def make_digests_due(session: AsyncSession) -> None:
    """The interval has passed (the database's clock is fixed for the test's one transaction: move the
    digests' start back instead)."""
    await session.execute(
        text(
            "UPDATE email_digest SET pending_since = pending_since - interval '1 hour',"
            " retry_at = retry_at - interval '1 hour'"
        )
    )


async def count(session: AsyncSession, sql: str, **params: Any) -> int:
    return int(await session.scalar(text(sql), params) or 0)


async def late_notifications(session: AsyncSession, user_id: int) -> int:
    return await count(session, "SELECT count(*) FROM notification WHERE user_id = :u AND type = 'retard'", u=user_id)


def digests_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return sink.received(lambda m: to_address(m) == address and m["Subject"].startswith("[MIF] Retards"))


Staff = Callable[[int], Awaitable[dict[str, int]]]


@pytest.fixture
def staff(
    make_user: MakeUser, make_technicien: MakeTech, deliver: Deliver, sender: DeliverySender, smtp_sink: SmtpSink
) -> Staff:
    """Two active managers, a deactivated one, a technician (profile `base`), a client user; their welcomes
    sent and the sink emptied. Returns the user ids by role."""

    async def make(base: int) -> dict[str, int]:
        await make_user(base + 1, "responsable")
        await make_user(base + 2, "admin")
        await make_user(base + 3, "responsable")
        await deliver("auth.user.deactivated.v1", user_data(base + 3, "responsable", is_active=False))
        await make_user(base + 4)
        await make_technicien(base, base + 4)
        await make_user(base + 5, "client", client_id=3)
        assert await sender.send_due() == 5  # the welcomes
        smtp_sink.clear()
        return {"responsable": base + 1, "admin": base + 2, "deactivated": base + 3, "technicien": base + 4}

    return make


async def test_200_late_interventions_give_each_manager_one_digest_email(
    deliver: Deliver,
    staff: Staff,
    sender: DeliverySender,
    smtp_sink: SmtpSink,
    db_session: AsyncSession,
    outbox_of: Outbox,
) -> None:
    users = await staff(1100)

    # 200 interventions fall late (half of them the technician's), one event each.
    for n in range(200):
        data = intervention_data(60_000 + n, "en_cours", technicien_id=1100 if n % 2 else None, titre=f"Panne {n}")
        assert await deliver(LATE, data)
    # In-app: one notification per item and recipient.
    assert await late_notifications(db_session, users["responsable"]) == 200
    assert await late_notifications(db_session, users["admin"]) == 200
    assert await late_notifications(db_session, users["technicien"]) == 100
    assert await late_notifications(db_session, users["deactivated"]) == 0
    # No e-mail per item: their deliveries wait for the digest, which waits for the interval (15 min).
    assert await sender.send_due() == 0
    assert await sender.send_digests() == 0
    assert smtp_sink.messages == []

    await make_digests_due(db_session)
    assert await sender.send_digests() == 3
    assert await sender.send_digests() == 0  # each digest goes out once
    for who in ("responsable", "admin"):
        [digest] = digests_to(smtp_sink, f"{who[:4]}{users[who]}@example.ma")
        assert digest["Subject"] == "[MIF] Retards : 200 éléments en retard"
        assert digest["X-MIF-Digest-Items"] == "200"
        body, html = parts(digest)
        assert "200 éléments en retard" in body and "Intervention en retard : Panne 0 " in body
        assert body.count("Intervention en retard : ") == 50  # digest_max_items; the others are counted
        assert "... et 150 autres éléments en retard" in body
        assert "Panne 49 " in html and "Panne 50 " not in html
    [technicien] = digests_to(smtp_sink, f"tech{users['technicien']}@example.ma")
    assert technicien["Subject"] == "[MIF] Retards : 100 éléments en retard"
    assert len(smtp_sink.messages) == 3

    # Every item's delivery is settled, with its own `sent` event.
    statuses = await db_session.execute(
        text(
            "SELECT d.statut, d.attempts, count(*) FROM delivery d JOIN notification n ON n.id = d.notification_id"
            " WHERE n.type = 'retard' GROUP BY d.statut, d.attempts"
        )
    )
    assert statuses.all() == [("sent", 1, 500)]
    sent = [e for e in await outbox_of("notifications.notification.sent.v1") if e["data"]["type"] == "retard"]
    assert len(sent) == 500

    # The same intervention late again (another event): nothing more, in-app or by e-mail.
    assert await deliver(LATE, intervention_data(60_000, "en_cours", titre="Panne 0"))
    assert await late_notifications(db_session, users["responsable"]) == 200
    assert await count(db_session, "SELECT count(*) FROM email_digest WHERE pending_since IS NOT NULL") == 0
    await make_digests_due(db_session)
    assert await sender.send_digests() == 0

    # A new late item after the digest: the next digest, one interval later, with just that one.
    assert await deliver(LATE, intervention_data(60_200, "en_cours", titre="Panne 200"))
    assert await sender.send_digests() == 0
    await make_digests_due(db_session)
    assert await sender.send_digests() == 2
    [second] = digests_to(smtp_sink, f"resp{users['responsable']}@example.ma")[1:]
    assert second["Subject"] == "[MIF] Retards : 1 élément en retard"
    assert "Panne 200" in parts(second)[0]


async def test_overdue_occurrences_are_told_once_per_key_and_digested(
    deliver: Deliver, make_user: MakeUser, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    await make_user(1201, "responsable")
    smtp_sink.clear()
    overdue = overdue_data(12, 5, datetime(2026, 5, 10, 8, tzinfo=UTC), equipement_nom="Groupe électrogène")
    event_id = str(uuid.uuid4())
    assert await deliver("planning.plan.overdue.v1", overdue, event_id=event_id)
    assert not await deliver("planning.plan.overdue.v1", overdue, event_id=event_id)  # the inbox
    assert await deliver("planning.plan.overdue.v1", overdue)  # another event, the same occurrence
    other = overdue_data(12, 5, datetime(2026, 6, 9, 8, tzinfo=UTC), equipement_nom="Groupe électrogène")
    assert await deliver("planning.plan.overdue.v1", other)
    assert await late_notifications(db_session, 1201) == 2
    await make_digests_due(db_session)
    assert await sender.send_due() == 1  # the welcome only
    assert await sender.send_digests() == 1
    [digest] = digests_to(smtp_sink, "resp1201@example.ma")
    body, _ = parts(digest)
    assert body.count("Maintenance préventive en retard : Groupe électrogène") == 2


async def test_a_digest_waits_out_an_smtp_outage(
    deliver: Deliver, make_user: MakeUser, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    await make_user(1301, "responsable")
    await sender.send_due()
    smtp_sink.clear()
    for n in range(3):
        await deliver(LATE, intervention_data(61_000 + n, "en_cours"))
    await make_digests_due(db_session)
    smtp_sink.stop()
    assert await sender.send_digests() == 1
    state = (await db_session.execute(text("SELECT * FROM email_digest WHERE user_id = 1301"))).one()
    assert state.attempts == 1 and state.pending_since is not None and state.last_error.startswith("SMTPConnect")
    assert await sender.send_digests() == 0  # backing off
    pending = await db_session.execute(
        text(
            "SELECT d.statut, d.last_error FROM delivery d JOIN notification n ON n.id = d.notification_id"
            " WHERE n.user_id = 1301 AND n.type = 'retard'"
        )
    )
    assert {(statut, error[:11]) for statut, error in pending} == {("pending", "SMTPConnect")}
    smtp_sink.start()
    await make_digests_due(db_session)
    assert await sender.send_digests() == 1
    [digest] = digests_to(smtp_sink, "resp1301@example.ma")
    assert digest["Subject"] == "[MIF] Retards : 3 éléments en retard"
    state = (await db_session.execute(text("SELECT * FROM email_digest WHERE user_id = 1301"))).one()
    assert (state.attempts, state.pending_since, state.retry_at, state.last_error) == (0, None, None, None)


async def test_a_suspended_plan_is_told_to_each_manager_once(
    deliver: Deliver, staff: Staff, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    users = await staff(1400)
    suspended = suspended_data(
        77,
        5,
        datetime(2026, 12, 4, 8, tzinfo=UTC),
        equipement_nom="Compresseur Atlas",
        technicien_id=1400,
        occurred_at=datetime(2026, 12, 4, 8, 30, tzinfo=UTC),
    )
    event_id = str(uuid.uuid4())
    assert await deliver("planning.plan.suspended.v1", suspended, event_id=event_id)
    assert not await deliver("planning.plan.suspended.v1", suspended, event_id=event_id)
    assert await deliver("planning.plan.suspended.v1", suspended)  # published twice: still told once
    rows = await db_session.execute(
        text("SELECT user_id, type, titre, contenu FROM notification WHERE event_type = 'planning.plan.suspended.v1'")
    )
    told = {r.user_id: r for r in rows}
    assert set(told) == {users["responsable"], users["admin"]}  # managers only, active ones
    row = told[users["admin"]]
    assert row.type == "information"
    assert row.titre == "Plan préventif suspendu automatiquement : Compresseur Atlas"
    assert "Le plan de maintenance préventive n°77 (Compresseur Atlas, journalier) a été suspendu" in row.contenu
    assert "6 intervention(s) en moins d'une heure (limite : 6 par heure)" in row.contenu
    # By e-mail at once (not in a digest).
    assert await sender.send_due() == 2
    subjects = sorted((to_address(m), m["Subject"]) for m in smtp_sink.messages)
    assert subjects == [
        (f"admi{users['admin']}@example.ma", "[MIF] Plan préventif suspendu automatiquement : Compresseur Atlas"),
        (f"resp{users['responsable']}@example.ma", "[MIF] Plan préventif suspendu automatiquement : Compresseur Atlas"),
    ]
    # A later suspension of the same plan (resumed, then tripped again) is a new fact: told again.
    assert await deliver("planning.plan.suspended.v1", {**suspended, "occurred_at": "2026-12-04T10:00:00+00:00"})
    assert (
        await count(
            db_session,
            "SELECT count(*) FROM notification WHERE user_id = :u AND type = 'information'"
            " AND event_type = 'planning.plan.suspended.v1'",
            u=users["admin"],
        )
        == 2
    )


async def test_two_senders_at_once_send_each_digest_once(
    mif_settings: NotificationsSettings, smtp_sink: SmtpSink
) -> None:
    """Two replicas, each with its own engine, committing for real, claim the same due digests at the
    same moment: each recipient gets one e-mail."""
    user_ids = list(range(1_500_001, 1_500_006))
    engines = [make_engine(mif_settings.database_url, schema="notifications", pool_size=2) for _ in range(2)]
    makers = [make_sessionmaker(engine, source="notifications") for engine in engines]
    try:
        async with makers[0]() as session, session.begin():
            for uid in user_ids:
                await session.execute(
                    text(
                        "INSERT INTO user_ref (user_id, username, email, full_name, role, is_active, event_time)"
                        " VALUES (:u, :n, :e, :n, 'responsable', true, now())"
                    ),
                    {"u": uid, "n": f"resp{uid}", "e": f"resp{uid}@example.ma"},
                )
            for n in range(20):
                message = Message(TypeNotification.retard, f"Intervention en retard : Panne {n}", "En retard.", n + 1)
                origin = service.Origin(event_id=str(uuid.uuid4()), event_type=LATE)
                await service.notify(
                    session, user_ids=user_ids, message=message, origin=origin, item_key=f"test:{n}", digest=True
                )
            await session.execute(
                text("UPDATE email_digest SET pending_since = now() - interval '1 hour' WHERE user_id = ANY(:u)"),
                {"u": user_ids},
            )
        senders = [DeliverySender(sessionmaker=maker, settings=mif_settings) for maker in makers]
        results = await asyncio.gather(*(s.send_digests() for s in senders))
        again = await asyncio.gather(*(s.send_digests() for s in senders))
        async with engines[1].connect() as conn:
            statuses = (
                await conn.execute(
                    text(
                        "SELECT d.statut, count(*) FROM delivery d JOIN notification n ON n.id = d.notification_id"
                        " WHERE n.user_id = ANY(:u) GROUP BY d.statut"
                    ),
                    {"u": user_ids},
                )
            ).all()
    finally:
        async with engines[0].begin() as conn:
            await conn.execute(
                text("DELETE FROM outbox WHERE (envelope->'data'->>'user_id')::bigint = ANY(:u)"), {"u": user_ids}
            )
            for table in ("notification", "email_digest", "user_ref"):
                await conn.execute(text(f"DELETE FROM {table} WHERE user_id = ANY(:u)"), {"u": user_ids})
        for engine in engines:
            await engine.dispose()
    assert sum(results) == 5 and sum(again) == 0
    assert statuses == [("sent", 100)]
    for uid in user_ids:
        [digest] = digests_to(smtp_sink, f"resp{uid}@example.ma")
        assert digest["Subject"] == "[MIF] Retards : 20 éléments en retard"


async def test_a_triggered_threshold_rule_is_told_to_each_manager_once_per_episode(
    deliver: Deliver, staff: Staff, sender: DeliverySender, smtp_sink: SmtpSink, db_session: AsyncSession
) -> None:
    users = await staff(1500)
    due = datetime(2026, 12, 4, 8, 10, tzinfo=UTC)
    regle = {
        "declencheur": "seuil",
        "compteur_id": 9,
        "compteur_code": "vibration",
        "unite": "mm/s",
        "valeur": 8.4,
        "seuil": 7.1,
        "operateur": ">",
        "debut_episode": "2026-12-04T08:00:00+00:00",
    }
    triggered = occurrence_data(
        78,
        6,
        due,
        occurrence_key="78:s:2026-12-04T08:00:00+00:00",
        frequence="seuil",
        equipement_nom="Pompe P-12",
        type="corrective",
        priorite="haute",
        titre="Vibrations pompe P-12",
        regle=regle,
    )
    event_id = str(uuid.uuid4())
    assert await deliver("planning.occurrence.due.v1", triggered, event_id=event_id)
    assert not await deliver("planning.occurrence.due.v1", triggered, event_id=event_id)
    assert await deliver("planning.occurrence.due.v1", triggered)  # published twice: still told once
    # A preventive occurrence (a calendar or usage plan) tells nobody.
    assert await deliver("planning.occurrence.due.v1", occurrence_data(78, 6, due, occurrence_key="78:u:1"))
    rows = await db_session.execute(
        text("SELECT user_id, type, titre, contenu FROM notification WHERE event_type = 'planning.occurrence.due.v1'")
    )
    told = {r.user_id: r for r in rows}
    assert set(told) == {users["responsable"], users["admin"]}  # managers only, active ones, once each
    row = told[users["responsable"]]
    assert row.type == "information" and row.titre == "Alerte : Vibrations pompe P-12"
    assert (
        "Le compteur « vibration » indique 8.4 mm/s, au-dessus du seuil de 7.1 mm/s depuis le 04/12/2026" in row.contenu
    )
    assert "corrective (priorité haute)" in row.contenu and "Pompe P-12" in row.contenu
    assert await sender.send_due() == 2  # by e-mail at once
    # The next episode of the same rule is a new fact.
    assert await deliver(
        "planning.occurrence.due.v1", {**triggered, "occurrence_key": "78:s:2026-12-04T10:00:00+00:00"}
    )
    assert (
        await count(db_session, "SELECT count(*) FROM notification WHERE event_type = 'planning.occurrence.due.v1'")
        == 4
    )
