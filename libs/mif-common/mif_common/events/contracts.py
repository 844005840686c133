"""Names of the event types one service publishes and several others consume.

The payloads belong to their publisher (mif_<service>/events.py, docs/events/*-contract.md); the verbs are
named here once so that each consumer binds the same set, and a new verb is one edit. The catalogue test
(tests/test_event_catalogue.py) checks that every consumed type has a publisher.
"""

from __future__ import annotations

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
