"""Names of the event types one service publishes and several others consume.

The payloads belong to their publisher (mif_<service>/events.py, docs/events/*-contract.md); the verbs are
named here once so that each consumer binds the same set, and a new verb is one edit. The catalogue test
(tests/test_event_catalogue.py) checks that every consumed type has a publisher.
"""

from __future__ import annotations

from collections.abc import Iterable

# interventions.intervention.<verb>.v1 (docs/events/interventions-contract.md); every one carries the
# intervention's full snapshot, so a consumer may treat them all alike.
INTERVENTION_VERBS = (
    "created",
    "assigned",
    "unassigned",
    "started",
    "paused",
    "resumed",
    "closed",
    "cancelled",
    "archived",
    "updated",
    "late",
)


def intervention_event_type(verb: str) -> str:
    return f"interventions.intervention.{verb}.v1"


# The event types of each family named here (a consumer may take part of a family).
FAMILIES: tuple[tuple[str, ...], ...] = (tuple(intervention_event_type(verb) for verb in INTERVENTION_VERBS),)


def untaken_types(taken: Iterable[str]) -> list[str]:
    """The types of each shared family a consumer takes part of (`taken`) but not all: a queue declared by
    an earlier version that took them still has their bindings, which must go (ADR 0001, point 11)."""
    keys = set(taken)
    return [
        event_type
        for family in FAMILIES
        if keys.intersection(family)
        for event_type in family
        if event_type not in keys
    ]
