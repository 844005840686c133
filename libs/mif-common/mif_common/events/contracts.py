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


def untaken_intervention_types(taken: Iterable[str]) -> list[str]:
    """The intervention event types a consumer that takes some of the family (`taken`) does not: a queue
    declared by an earlier version that took them still has their bindings, which must go (ADR 0001,
    point 11). Nothing when it takes none of the family."""
    family = [intervention_event_type(verb) for verb in INTERVENTION_VERBS]
    keys = set(taken)
    return [key for key in family if key not in keys] if keys.intersection(family) else []
