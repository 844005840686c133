"""What the catalogue knows: who publishes which event type with which payload model, who consumes it,
and the invariants that must hold between the two (ARCHITECTURE.md §3).

Pure data and rules, no discovery and no rendering: the tests build catalogues of made-up services with
`build_catalogue` to prove each rule fails when it should.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mif_common.events.envelope import EventPayload

# `<service>.<entity>.<past-tense-verb>.v<N>`: lower snake case words, a version from 1.
EVENT_TYPE_PATTERN = re.compile(
    r"^(?P<service>[a-z][a-z0-9_]*)\.(?P<entity>[a-z][a-z0-9_]*)\.(?P<verb>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)$"
)


class CatalogueError(Exception):
    """The catalogue cannot be built or does not hold (the message says what to fix)."""


@dataclass(frozen=True, slots=True)
class EventName:
    service: str
    entity: str
    verb: str
    version: int

    @classmethod
    def parse(cls, event_type: str) -> EventName | None:
        match = EVENT_TYPE_PATTERN.fullmatch(event_type)
        if match is None:
            return None
        return cls(match["service"], match["entity"], match["verb"], int(match["version"]))


@dataclass(frozen=True, slots=True)
class Publication:
    """One event type and the service whose `events` module models it (its only legitimate publisher)."""

    event_type: str
    service: str
    model: type[EventPayload]
    # Repository-relative path of the hand-written contract page, when one covers this type.
    contract: str | None = None

    @property
    def name(self) -> EventName | None:
        return EventName.parse(self.event_type)


@dataclass(frozen=True, slots=True)
class Consumer:
    """A queue on `mif.events` and the event types its owner handles."""

    name: str  # the service (or "token-states": the feed the gateway and the services follow)
    queue: str
    # Routing keys the queue is bound with; AMQP topic patterns (`*`, `#`) are allowed.
    bindings: tuple[str, ...]
    handles: frozenset[str]
    description: str = ""
    # Manual acknowledgements (the services' inbox consumers) or auto-ack (the token-state feed).
    ack: bool = True
    durable: bool = True
    exclusive: bool = False


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken invariant. `party` is the consumer or publisher concerned; `key` identifies it for the
    list of accepted exceptions."""

    code: str
    event_type: str
    party: str
    message: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.code, self.event_type, self.party)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more."""

    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        head, rest = p[0], p[1:]
        if head == "#":
            return any(match(rest, k[i:]) for i in range(len(k) + 1))
        if not k:
            return False
        return (head == "*" or head == k[0]) and match(rest, k[1:])

    return match(pattern.split("."), routing_key.split("."))


@dataclass(frozen=True)
class Catalogue:
    publications: tuple[Publication, ...]
    consumers: tuple[Consumer, ...]
    # Per publishing service: what its events module says about them (its docstring).
    service_descriptions: Mapping[str, str] = field(default_factory=dict)
    # Violations the team knowingly accepts, by `Violation.key`, with the reason shown in the catalogue.
    accepted: Mapping[tuple[str, str, str], str] = field(default_factory=dict)

    def publication(self, event_type: str) -> Publication | None:
        for publication in self.publications:
            if publication.event_type == event_type:
                return publication
        return None

    def consumers_of(self, event_type: str) -> tuple[Consumer, ...]:
        return tuple(c for c in self.consumers if event_type in c.handles)

    def event_types(self) -> list[str]:
        """Every published or consumed type, sorted (a consumed type without publisher is listed too)."""
        types = {p.event_type for p in self.publications}
        for consumer in self.consumers:
            types |= consumer.handles
        return sorted(types)

    def unpublished_reason(self, event_type: str) -> str | None:
        """Why a consumed type without publisher is accepted (None if it has a publisher)."""
        if self.publication(event_type) is not None:
            return None
        reasons = [
            r for (code, t, _), r in sorted(self.accepted.items()) if code == "orphan-consumer" and t == event_type
        ]
        return "; ".join(reasons) if reasons else "no service publishes this type"

    def violations(self) -> list[Violation]:
        """Every broken invariant, accepted or not, in a stable order."""
        found: list[Violation] = []
        publishers: dict[str, list[Publication]] = {}
        for publication in self.publications:
            publishers.setdefault(publication.event_type, []).append(publication)
        for event_type, pubs in sorted(publishers.items()):
            if len(pubs) > 1:
                who = ", ".join(f"{p.service} ({p.model.__module__}.{p.model.__qualname__})" for p in pubs)
                found.append(
                    Violation(
                        "duplicate-publisher",
                        event_type,
                        pubs[0].service,
                        f"{event_type} has {len(pubs)} publishers: {who}",
                    )
                )
            for publication in pubs:
                name = publication.name
                if name is None:
                    found.append(
                        Violation(
                            "bad-name",
                            event_type,
                            publication.service,
                            f"{event_type!r} ({publication.model.__qualname__}) does not match "
                            "<service>.<entity>.<verb>.v<N>",
                        )
                    )
                elif name.service != publication.service:
                    found.append(
                        Violation(
                            "wrong-prefix",
                            event_type,
                            publication.service,
                            f"{event_type} is published by {publication.service} but its prefix names {name.service}",
                        )
                    )
        for consumer in self.consumers:
            for event_type in sorted(consumer.handles):
                if event_type not in publishers:
                    found.append(
                        Violation(
                            "orphan-consumer",
                            event_type,
                            consumer.name,
                            f"{consumer.name} consumes {event_type} but no service publishes it "
                            "(a typo in a handler key, or an event not modelled in any events module)",
                        )
                    )
                if not any(topic_matches(b, event_type) for b in consumer.bindings):
                    found.append(
                        Violation(
                            "unbound-handler",
                            event_type,
                            consumer.name,
                            f"{consumer.name} handles {event_type} but its queue {consumer.queue} is not bound to it "
                            f"(bindings: {', '.join(consumer.bindings)})",
                        )
                    )
        return found

    def problems(self) -> list[str]:
        """What must be fixed: violations not accepted, and accepted exceptions that no longer happen
        (so the list of exceptions cannot outlive the problem and keep documenting something false)."""
        violations = self.violations()
        keys = {v.key for v in violations}
        problems = [str(v) for v in violations if v.key not in self.accepted]
        problems += [
            f"[stale-exception] {code} {event_type} ({party}) is accepted but no longer happens: "
            "remove it from the accepted exceptions"
            for (code, event_type, party) in sorted(self.accepted)
            if (code, event_type, party) not in keys
        ]
        return problems

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise CatalogueError("the event catalogue does not hold:\n  " + "\n  ".join(problems))


def build_catalogue(
    publications: Iterable[Publication],
    consumers: Iterable[Consumer],
    *,
    service_descriptions: Mapping[str, str] | None = None,
    accepted: Mapping[tuple[str, str, str], str] | None = None,
) -> Catalogue:
    """A catalogue in a canonical order (by event type, then by consumer name) so renderings are stable."""
    return Catalogue(
        publications=tuple(sorted(publications, key=lambda p: (p.event_type, p.service, p.model.__qualname__))),
        consumers=tuple(sorted(consumers, key=lambda c: c.name)),
        service_descriptions=dict(sorted((service_descriptions or {}).items())),
        accepted=dict(accepted or {}),
    )
