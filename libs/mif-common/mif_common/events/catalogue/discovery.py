"""Finding the suite's events in the code: `mif_<svc>.events` (publications) and `mif_<svc>.handlers`
(consumptions) for every service of `mif_common.suite`, plus the token-state feed that the gateway and
every service but auth follow (mif_common.auth.token_state).

The services are imported by name with importlib: mif_common must not depend on them statically (they
depend on it), and a checkout without some service still yields the catalogue of the others. The
token-state feed is mif_common's own, imported as any module.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from mif_common.auth import token_state
from mif_common.events.catalogue.model import (
    Catalogue,
    CatalogueError,
    Consumer,
    EventName,
    Publication,
    build_catalogue,
)
from mif_common.events.envelope import EventPayload
from mif_common.events.topology import consumer_queue_name, dead_letter_queue_name
from mif_common.suite import ALL_SERVICES, REPO_ROOT, ServiceInfo

DOCS_DIR = REPO_ROOT / "docs" / "events"
TOKEN_STATE_CONSUMER = "token-states"

# Known violations, kept on purpose, each with the reason the catalogue shows next to it. An entry that
# no longer matches a violation is itself an error (see Catalogue.problems), so this list cannot rot.
ACCEPTED_VIOLATIONS: dict[tuple[str, str, str], str] = {
    ("orphan-consumer", "interventions.intervention.deleted.v1", "documents"): (
        "not in the interventions v1 contract and published by nobody; documents handles it in advance "
        "(docs/events/documents.md, docs/retention.md)"
    ),
}


def _import_optional(name: str) -> ModuleType | None:
    """The module, or None when it (or its package) does not exist; errors inside it propagate."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            return None
        raise


def payload_models(module: ModuleType) -> list[type[EventPayload]]:
    """The concrete payloads a module defines: EventPayload subclasses with an `event_type`. Abstract
    bases (no `event_type`, e.g. InterventionEvent) and classes merely imported there are skipped."""
    models = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, EventPayload)
        and obj.__module__ == module.__name__
        and isinstance(getattr(obj, "event_type", None), str)
    ]
    return sorted(models, key=lambda m: (m.event_type, m.__qualname__))


def handled_types(module: ModuleType) -> frozenset[str]:
    """The keys of the service's `HANDLERS` (every service has one static registry: handlers that need a
    setting read it from their session, `mif_common.db.session_settings`)."""
    handlers: object = getattr(module, "HANDLERS", None)
    if handlers is None:
        raise CatalogueError(f"{module.__name__} defines no HANDLERS")
    if not isinstance(handlers, Mapping) or not all(isinstance(k, str) for k in handlers):
        raise CatalogueError(f"{module.__name__}: the handlers must be a mapping of event type to handler")
    return frozenset(handlers)


def contract_doc(publication_type: str, service: str, docs_dir: Path, repo_root: Path) -> str | None:
    """The hand-written page about this type: `<service>.md` or `<service>-contract.md` under docs/events,
    if it mentions the type's `<service>.<entity>.` family. Repository-relative, or None."""
    name = EventName.parse(publication_type)
    if name is None:
        return None
    family = f"{name.service}.{name.entity}."
    for candidate in (docs_dir / f"{service}.md", docs_dir / f"{service}-contract.md"):
        if candidate.is_file() and family in candidate.read_text(encoding="utf-8"):
            try:
                return candidate.relative_to(repo_root).as_posix()
            except ValueError:
                return candidate.as_posix()
    return None


def _docstring(module: ModuleType) -> str:
    return inspect.getdoc(module) or ""


def service_publications(
    service: ServiceInfo, *, docs_dir: Path, repo_root: Path
) -> tuple[list[Publication], str | None]:
    module = _import_optional(f"{service.package}.events")
    if module is None:
        return [], None
    publications = [
        Publication(
            event_type=model.event_type,
            service=service.name,
            model=model,
            contract=contract_doc(model.event_type, service.name, docs_dir, repo_root),
        )
        for model in payload_models(module)
    ]
    return publications, _docstring(module)


def service_consumer(service: ServiceInfo) -> Consumer | None:
    module = _import_optional(f"{service.package}.handlers")
    if module is None:
        return None
    handles = handled_types(module)
    if not handles:
        return None
    queue = consumer_queue_name(service.name)
    return Consumer(
        name=service.name,
        queue=queue,
        # EventConsumer binds its quorum queue to each handler key (mif_common.events.consumer).
        bindings=tuple(sorted(handles)),
        handles=handles,
        description=(
            f"Quorum queue `{queue}`, bound to each handled type; inbox dedupe, bounded retries, "
            f"then dead-lettered through `mif.dlx` to `{dead_letter_queue_name(queue)}`."
        ),
    )


def token_state_consumer() -> Consumer:
    """Every process of the gateway and of every service but auth follows `auth.user.*` on an exclusive,
    auto-delete queue of its own, auto-acked: a lost event is covered by reloading the token-state
    snapshot (mif_common.auth.token_state)."""
    prefix = token_state.QUEUE_PREFIX
    return Consumer(
        name=TOKEN_STATE_CONSUMER,
        queue=f"{prefix}.<process>.<replica>",
        bindings=(token_state.ROUTING_KEY,),
        handles=token_state.STATE_EVENT_TYPES,
        description=(
            f"One exclusive, auto-delete queue per process of the gateway and of every service but auth "
            f"(`{prefix}.<gateway|service>.<random id>`), auto-acked; keeps the token states that refuse "
            "a deactivated user's, a deactivated organisation's or a stale access token at once, everywhere."
        ),
        ack=False,
        durable=False,
        exclusive=True,
    )


def discover_catalogue(
    services: Iterable[ServiceInfo] = ALL_SERVICES,
    *,
    include_token_states: bool = True,  # the token-state feed (the gateway's and the services')
    docs_dir: Path = DOCS_DIR,
    repo_root: Path = REPO_ROOT,
    accepted: Mapping[tuple[str, str, str], str] = ACCEPTED_VIOLATIONS,
) -> Catalogue:
    """The catalogue of the code as it is (violations are not checked here: see Catalogue.check)."""
    publications: list[Publication] = []
    consumers: list[Consumer] = []
    descriptions: dict[str, str] = {}
    for service in services:
        found, description = service_publications(service, docs_dir=docs_dir, repo_root=repo_root)
        publications += found
        if description is not None:
            descriptions[service.name] = description
        consumer = service_consumer(service)
        if consumer is not None:
            consumers.append(consumer)
    if include_token_states:
        consumers.append(token_state_consumer())
    return build_catalogue(publications, consumers, service_descriptions=descriptions, accepted=accepted)
