"""What planning publishes is exactly docs/events/planning-contract.md (read from the document)."""

from __future__ import annotations

import re

from mif_common.suite import REPO_ROOT
from mif_planning.events import (
    ALL_EVENTS,
    ChecklistCreated,
    ChecklistDeleted,
    ChecklistUpdated,
    OccurrenceDue,
    OccurrenceReminder,
    PlanOverdue,
    PlanSuspended,
    TechnicienCreated,
    TechnicienDeleted,
    TechnicienUpdated,
)

CONTRACT = (REPO_ROOT / "docs" / "events" / "planning-contract.md").read_text()


def section(title: str) -> str:
    return CONTRACT.split(f"## `{title}`", 1)[1].split("\n## ", 1)[0]


def table_fields(title: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", section(title), flags=re.MULTILINE))


def test_the_event_types_are_the_contract_ones() -> None:
    assert [e.event_type for e in ALL_EVENTS] == [
        "planning.technicien.created.v1",
        "planning.technicien.updated.v1",
        "planning.technicien.deleted.v1",
        "planning.occurrence.due.v1",
        "planning.occurrence.reminder.v1",
        "planning.plan.overdue.v1",
        "planning.plan.suspended.v1",
        "planning.checklist.created.v1",
        "planning.checklist.updated.v1",
        "planning.checklist.deleted.v1",
    ]


def test_payload_fields_are_the_contract_ones() -> None:
    technicien = table_fields("planning.technicien.created|updated|deleted.v1")
    assert len(technicien) == 12
    for model in (TechnicienCreated, TechnicienUpdated, TechnicienDeleted):
        assert set(model.model_fields) == technicien
    due = table_fields("planning.occurrence.due.v1")
    assert len(due) == 14
    assert set(OccurrenceDue.model_fields) == due
    assert OccurrenceDue.model_fields["checklist"].is_required() is False  # optional within v1
    reminder = " ".join(section("planning.occurrence.reminder.v1").split())
    assert "(but not `checklist`), plus `lead_minutes`" in reminder
    assert set(OccurrenceReminder.model_fields) == (due - {"checklist"}) | {"lead_minutes"}
    overdue_sentence = section("planning.plan.overdue.v1").split("Fields:", 1)[1].split(". ", 1)[0]
    assert set(PlanOverdue.model_fields) == set(re.findall(r"`([a-z_]+)`", overdue_sentence))
    suspended = table_fields("planning.plan.suspended.v1")
    assert len(suspended) == 10
    assert set(PlanSuspended.model_fields) == suspended
    checklist = table_fields("planning.checklist.created|updated|deleted.v1")
    assert len(checklist) == 6
    for model in (ChecklistCreated, ChecklistUpdated, ChecklistDeleted):
        assert set(model.model_fields) == checklist
