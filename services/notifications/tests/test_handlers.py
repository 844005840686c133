"""Events in, notifications out, through the real consumer path (CloudEvent envelopes, inbox dedupe):
the replicas, who is told what, duplicates and reordering."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.testing import user_data
from mif_common.testing.events import envelope
from mif_documents.testing import document_uploaded_data
from mif_interventions.testing import intervention_data
from mif_notifications import service
from mif_notifications.handlers import HANDLERS
from mif_notifications.messages import Message
from mif_notifications.models import TypeNotification
from mif_planning.testing import occurrence_data

Deliver = Callable[..., Awaitable[bool]]

MakeUser = Callable[..., Awaitable[dict[str, Any]]]
MakeTech = Callable[..., Awaitable[None]]
Rows = Callable[[int], Awaitable[list[dict[str, Any]]]]

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def intervention_event(verb: str, intervention_id: int, statut: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    return f"interventions.intervention.{verb}.v1", intervention_data(intervention_id, statut, **kw)


async def received(rows: Rows, user_id: int) -> list[tuple[str, str]]:
    """(type, titre) of a user's notifications, welcome excluded."""
    return [(r["type"], r["titre"]) for r in await rows(user_id) if r["event_type"] != "auth.user.created.v1"]


def test_every_consumed_type_has_a_handler() -> None:
    # Not `paused` nor `resumed`: they notify nobody and change nothing later notifications read.
    verbs = ["created", "assigned", "unassigned", "started", "closed", "cancelled"]
    verbs += ["archived", "updated", "late"]
    assert set(HANDLERS) == {
        *(f"interventions.intervention.{v}.v1" for v in verbs),
        *(f"auth.user.{v}.v1" for v in ("created", "updated", "deactivated", "activated")),
        *(f"planning.technicien.{v}.v1" for v in ("created", "updated", "deleted")),
        "planning.occurrence.reminder.v1",
        "planning.plan.overdue.v1",
        "planning.plan.suspended.v1",
        "planning.occurrence.due.v1",
        "documents.document.uploaded.v1",
        "auth.sign_in_attempts.failed.v1",
        "inventory.stock.low.v1",
        "reports.export.completed.v1",
        "reports.export.failed.v1",
    }


# --- users --------------------------------------------------------------------------------------


async def test_a_new_user_is_welcomed_in_app_and_by_email(
    deliver: Deliver, notifications_of: Rows, db_session: AsyncSession
) -> None:
    assert await deliver("auth.user.created.v1", user_data(501, "client", client_id=9, full_name="Salma Idrissi"))
    [welcome] = await notifications_of(501)
    assert welcome["type"] == "information" and welcome["canal"] == "email"
    assert welcome["titre"] == "Bienvenue sur MIF Maintenance"
    assert "Bonjour Salma Idrissi" in welcome["contenu"] and "rôle client" in welcome["contenu"]
    assert welcome["lue"] is False and welcome["date_lecture"] is None
    assert welcome["deliveries"] == [{"canal": "email", "statut": "pending", "attempts": 0, "last_error": None}]
    ref = (await db_session.execute(text("SELECT * FROM user_ref WHERE user_id = 501"))).one()
    assert (ref.email, ref.role, ref.client_id, ref.is_active) == ("clie501@example.ma", "client", 9, True)


async def test_user_replica_keeps_the_latest_news(deliver: Deliver, db_session: AsyncSession) -> None:
    later, earlier = T0 + timedelta(seconds=5), T0
    await deliver("auth.user.created.v1", user_data(502), time=earlier)
    await deliver("auth.user.deactivated.v1", user_data(502, is_active=False), time=later)
    # An update older than the deactivation arrives late: ignored.
    await deliver("auth.user.updated.v1", user_data(502, full_name="Old name"), time=earlier + timedelta(seconds=1))
    ref = (await db_session.execute(text("SELECT full_name, is_active FROM user_ref WHERE user_id = 502"))).one()
    assert ref.is_active is False and ref.full_name == "Technicien n°502"
    await deliver("auth.user.activated.v1", user_data(502, full_name="New name"), time=later + timedelta(seconds=1))
    ref = (await db_session.execute(text("SELECT full_name, is_active FROM user_ref WHERE user_id = 502"))).one()
    assert ref.is_active is True and ref.full_name == "New name"


async def test_no_welcome_for_a_user_already_known_deactivated(deliver: Deliver, notifications_of: Rows) -> None:
    # The deactivation overtook the creation: the creation is old news, nobody is welcomed.
    await deliver("auth.user.deactivated.v1", user_data(503, is_active=False), time=at(1))
    await deliver("auth.user.created.v1", user_data(503), time=at(0))
    assert await notifications_of(503) == []


# --- interventions ------------------------------------------------------------------------------


async def test_assignment_notifies_the_technicians_user(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    await make_user(601, "technicien")
    await make_technicien(61, 601)
    event_type, data = intervention_event(
        "assigned", 700, "affectee", technicien_id=61, actor_id=9001, titre="Fuite d'huile compresseur"
    )
    assert await deliver(event_type, data, event_id="evt-assign-700")
    rows = [r for r in await notifications_of(601) if r["type"] == "affectation"]
    assert len(rows) == 1
    assert rows[0]["titre"] == "Nouvelle intervention affectée : Fuite d'huile compresseur"
    assert rows[0]["contenu"] == (
        "L'intervention n°700 « Fuite d'huile compresseur » vous a été affectée (priorité normale)."
    )
    assert rows[0]["intervention_id"] == 700 and rows[0]["event_id"] == "evt-assign-700"


async def test_creation_already_assigned_notifies_the_technician(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    await make_user(602)
    await make_technicien(62, 602)
    await deliver(*intervention_event("created", 701, "affectee", technicien_id=62, actor_id=9001, urgence=True))
    await deliver(*intervention_event("created", 702, "ouverte", actor_id=9001))
    [(kind, titre)] = await received(notifications_of, 602)
    assert kind == "affectation" and titre.endswith("Intervention 701")


async def test_the_same_event_twice_gives_one_notification(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows, db_session: AsyncSession
) -> None:
    await make_user(603)
    await make_technicien(63, 603)
    event = envelope(*intervention_event("assigned", 703, "affectee", technicien_id=63))
    assert await deliver(event) is True
    assert await deliver(event) is False
    assert len(await received(notifications_of, 603)) == 1
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event.id}) == 1


async def test_the_unique_event_user_pair_guards_even_without_the_inbox(
    db_session: AsyncSession, make_user: MakeUser, notifications_of: Rows
) -> None:
    await make_user(604)
    origin = service.Origin(event_id="evt-x", event_type="interventions.intervention.late.v1")
    message = Message(TypeNotification.retard, "Retard", "En retard.")
    first = await service.notify(db_session, user_ids=[604, 604], message=message, origin=origin)
    again = await service.notify(db_session, user_ids=[604, 6040], message=message, origin=origin)
    assert len(first) == 1 and len(again) == 1 and again != first
    assert len(await received(notifications_of, 604)) == 1
    assert len(await received(notifications_of, 6040)) == 1


async def test_an_unknown_technician_is_retried_then_dead_lettered(deliver: Deliver, db_session: AsyncSession) -> None:
    event = envelope(*intervention_event("assigned", 704, "affectee", technicien_id=99999))
    with pytest.raises(service.TechnicienInconnu):
        await deliver(event)
    # Nothing was kept, not even the inbox row: a redelivery starts afresh.
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event.id}) == 0
    assert await db_session.scalar(text("SELECT count(*) FROM intervention_ref WHERE intervention_id = 704")) == 0


async def test_a_superseded_assignment_arriving_late_notifies_nobody(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    await make_user(605)
    await make_user(606)
    await make_technicien(65, 605)
    await make_technicien(66, 606)
    # Reassigned to 66 at 10:05; the first assignment to 65 (10:00) is delivered after it.
    await deliver(*intervention_event("assigned", 705, "affectee", technicien_id=66, occurred_at=at(5)))
    await deliver(*intervention_event("assigned", 705, "affectee", technicien_id=65, occurred_at=at(0)))
    assert len(await received(notifications_of, 606)) == 1
    assert await received(notifications_of, 605) == []


@pytest.mark.parametrize(
    ("verb", "statut", "kind", "titre"),
    [
        ("started", "en_cours", "information", "Intervention démarrée : Panne pompe"),
        ("closed", "cloturee", "cloture", "Intervention clôturée : Panne pompe"),
        ("cancelled", "annulee", "information", "Intervention annulée : Panne pompe"),
    ],
)
async def test_start_close_cancel_tell_the_requester_and_the_clients_users(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows, verb: str, statut: str, kind: str, titre: str
) -> None:
    requester, colleague, inactive, other_org, actor = 611, 612, 613, 614, 615
    await make_user(requester, "client", client_id=7)
    await make_user(colleague, "client", client_id=7)
    await make_user(inactive, "client", client_id=7)
    await deliver("auth.user.deactivated.v1", user_data(inactive, "client", client_id=7, is_active=False))
    await make_user(other_org, "client", client_id=8)
    await make_user(actor, "technicien")
    common = {"client_id": 7, "titre": "Panne pompe"}
    await deliver(*intervention_event("created", 710, "ouverte", actor_id=requester, occurred_at=at(0), **common))
    await deliver(*intervention_event(verb, 710, statut, actor_id=actor, technicien_id=3, occurred_at=at(1), **common))
    assert await received(notifications_of, requester) == [(kind, titre)]
    assert await received(notifications_of, colleague) == [(kind, titre)]
    for nobody in (inactive, other_org, actor):
        assert await received(notifications_of, nobody) == []


async def test_nobody_is_told_about_their_own_action(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows
) -> None:
    await make_user(616, "client", client_id=17)
    await deliver(*intervention_event("created", 716, "ouverte", actor_id=616, client_id=17, occurred_at=at(0)))
    await deliver(*intervention_event("cancelled", 716, "annulee", actor_id=616, client_id=17, occurred_at=at(1)))
    assert await received(notifications_of, 616) == []


async def test_the_requester_is_kept_whatever_order_events_arrive_in(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows, db_session: AsyncSession
) -> None:
    await make_user(617, "responsable")
    # Assigned and started overtook created; then closed comes.
    await deliver(*intervention_event("assigned", 717, "affectee", occurred_at=at(2)))
    await deliver(*intervention_event("started", 717, "en_cours", occurred_at=at(3)))
    await deliver(*intervention_event("created", 717, "ouverte", actor_id=617, occurred_at=at(0), titre="Old title"))
    ref = (await db_session.execute(text("SELECT * FROM intervention_ref WHERE intervention_id = 717"))).one()
    assert ref.requester_id == 617 and ref.statut == "en_cours" and ref.occurred_at == at(3)
    assert ref.titre == "Intervention 717"  # the stale created did not overwrite the mutable fields
    await deliver(*intervention_event("closed", 717, "cloturee", occurred_at=at(4)))
    assert [k for k, _ in await received(notifications_of, 617)] == ["cloture"]


async def test_lateness_tells_the_technician_and_every_active_manager(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    await make_user(621)
    await make_technicien(71, 621)
    await make_user(622, "responsable")
    await make_user(623, "admin")
    await make_user(624, "responsable")
    await deliver("auth.user.deactivated.v1", user_data(624, "responsable", is_active=False))
    await make_user(625, "client", client_id=3)
    await deliver(*intervention_event("late", 720, "en_cours", technicien_id=71, titre="Chaudière"))
    expected = [("retard", "Intervention en retard : Chaudière")]
    for user in (621, 622, 623):
        assert await received(notifications_of, user) == expected
    assert await received(notifications_of, 624) == []
    assert await received(notifications_of, 625) == []


async def test_lateness_of_an_intervention_closed_meanwhile_is_dropped(
    deliver: Deliver, make_user: MakeUser, notifications_of: Rows
) -> None:
    await make_user(626, "responsable")
    await deliver(*intervention_event("closed", 721, "cloturee", occurred_at=at(10)))
    await deliver(*intervention_event("late", 721, "en_cours", occurred_at=at(5)))
    assert await received(notifications_of, 626) == []


async def test_replica_only_verbs_notify_nobody(deliver: Deliver, make_user: MakeUser, notifications_of: Rows) -> None:
    await make_user(627, "client", client_id=4)
    await deliver(*intervention_event("created", 722, "ouverte", actor_id=627, client_id=4, occurred_at=at(0)))
    for minute, (verb, statut) in enumerate([("updated", "ouverte"), ("unassigned", "ouverte")]):
        await deliver(*intervention_event(verb, 722, statut, client_id=4, occurred_at=at(minute + 1)))
    await deliver(*intervention_event("archived", 722, "archivee", client_id=4, occurred_at=at(9)))
    assert await received(notifications_of, 627) == []


# --- planning -------------------------------------------------------------------------------------


def occurrence(**extra: Any) -> dict[str, Any]:
    due_at = datetime(2026, 5, 10, 8, tzinfo=UTC)
    fields = {"equipement_nom": "Groupe électrogène", "technicien_id": 81, "commentaire": None, "occurred_at": T0}
    return occurrence_data(12, 5, due_at, **(fields | extra))


async def test_plan_reminder_and_overdue_tell_the_assignee_and_managers(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    await make_user(631)
    await make_technicien(81, 631)
    await make_user(632, "responsable")
    await deliver("planning.occurrence.reminder.v1", occurrence(lead_minutes=1440))
    overdue = {k: v for k, v in occurrence().items() if k not in ("frequence", "commentaire")}
    await deliver("planning.plan.overdue.v1", {**overdue, "intervention_id": 733})
    for user in (631, 632):
        rows = [r for r in await notifications_of(user) if r["event_type"] != "auth.user.created.v1"]
        assert [(r["type"], r["titre"]) for r in rows] == [
            ("rappel", "Maintenance préventive à venir : Groupe électrogène"),
            ("retard", "Maintenance préventive en retard : Groupe électrogène"),
        ]
        # 08:00 UTC is 09:00 in Casablanca (UTC+1, outside Ramadan).
        assert "prévue le 10/05/2026 à 09:00" in rows[0]["contenu"]
        assert rows[1]["intervention_id"] == 733 and "(intervention n°733)" in rows[1]["contenu"]


async def test_a_technician_profile_is_replaced_only_by_a_later_version(
    deliver: Deliver, db_session: AsyncSession
) -> None:
    from mif_planning.testing import technicien_data

    await deliver("planning.technicien.updated.v1", technicien_data(82, 641, version=3))
    await deliver("planning.technicien.created.v1", technicien_data(82, 640, version=1))
    await deliver("planning.technicien.deleted.v1", technicien_data(82, 641, version=4, is_active=False))
    ref = (await db_session.execute(text("SELECT user_id, is_active, version FROM technicien_ref"))).one()
    assert (ref.user_id, ref.is_active, ref.version) == (641, False, 4)


# --- documents ------------------------------------------------------------------------------------


async def test_a_document_tells_the_participants_but_not_the_uploader(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    requester, client_colleague, technician, manager = 651, 652, 653, 654
    await make_user(requester, "client", client_id=21)
    await make_user(client_colleague, "client", client_id=21)
    await make_user(technician)
    await make_technicien(91, technician)
    await make_user(manager, "responsable")
    await deliver(*intervention_event("created", 750, "ouverte", actor_id=requester, client_id=21, titre="Clim"))
    await deliver(*intervention_event("assigned", 750, "affectee", technicien_id=91, client_id=21, titre="Clim"))
    document = document_uploaded_data(5, 750, uploaded_by=technician, client_id=21, technicien_id=91, occurred_at=T0)
    await deliver("documents.document.uploaded.v1", document)
    expected = ("information", "Nouveau document : rapport.pdf")
    assert await received(notifications_of, requester) == [expected]
    assert await received(notifications_of, client_colleague) == [expected]
    assert expected not in await received(notifications_of, technician)
    assert await received(notifications_of, manager) == []
    [row] = [r for r in await notifications_of(requester) if r["titre"] == expected[1]]
    assert row["contenu"] == "Le document « rapport.pdf » (rapport) a été ajouté à l'intervention n°750 « Clim »."


# --- recipients -----------------------------------------------------------------------------------


async def test_users_unknown_to_the_replica_are_notified_in_app(
    deliver: Deliver, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    await make_technicien(92, 661)  # its user's auth event has not arrived (or predates this service)
    await deliver(*intervention_event("assigned", 760, "affectee", technicien_id=92))
    [row] = await notifications_of(661)
    assert row["type"] == "affectation" and row["deliveries"][0]["statut"] == "pending"


async def test_deactivated_users_are_never_notified(
    deliver: Deliver, make_user: MakeUser, make_technicien: MakeTech, notifications_of: Rows
) -> None:
    await make_user(662)
    await make_technicien(93, 662)
    await deliver("auth.user.deactivated.v1", user_data(662, is_active=False))
    await deliver(*intervention_event("assigned", 761, "affectee", technicien_id=93))
    assert await received(notifications_of, 662) == []


@pytest.mark.parametrize(
    "data",
    [
        {"intervention_id": 1},
        intervention_data(770, "affectee", occurred_at=datetime(2026, 3, 1, 8, 0)),  # no time zone
        intervention_data(0, "affectee"),
    ],
)
async def test_a_malformed_event_is_permanent_and_writes_nothing(
    deliver: Deliver, db_session: AsyncSession, data: dict[str, Any]
) -> None:
    event_id = str(uuid.uuid4())
    with pytest.raises(ValidationError):  # the consumer dead-letters it at once
        await deliver("interventions.intervention.assigned.v1", data, event_id=event_id)
    assert await db_session.scalar(text("SELECT count(*) FROM inbox WHERE event_id = :id"), {"id": event_id}) == 0
