"""Discovery of the event catalogue in the code, on made-up service packages: what a package that is
missing, broken or wrongly shaped gives (nothing, or a CatalogueError naming the module), not just the
real suite's happy path (tests/test_event_catalogue.py)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from mif_common.auth.token_state import QUEUE_PREFIX, ROUTING_KEY, STATE_EVENT_TYPES
from mif_common.events.catalogue.discovery import (
    contract_doc,
    discover_catalogue,
    handled_types,
    service_consumer,
    service_publications,
    token_state_consumer,
)
from mif_common.events.catalogue.model import CatalogueError
from mif_common.suite import ServiceInfo

MakePackage = Callable[[str, dict[str, str]], ServiceInfo]


@pytest.fixture
def make_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakePackage]:
    """A package on sys.path with the given modules (`{"handlers": "source"}`); a ServiceInfo naming it."""
    made: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(name: str, modules: dict[str, str]) -> ServiceInfo:
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text(modules.pop("__init__", ""))
        for module, source in modules.items():
            (package / f"{module}.py").write_text(textwrap.dedent(source))
        made.append(name)
        return ServiceInfo(name=name.removeprefix("fake_"), package=name, port=1)

    yield make
    for name in made:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def _module(name: str, **attributes: object) -> ModuleType:
    module = ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def test_a_package_without_events_or_handlers_publishes_and_consumes_nothing(make_package: MakePackage) -> None:
    svc = make_package("fake_silent", {})
    assert service_publications(svc, docs_dir=Path("/nowhere"), repo_root=Path("/")) == ([], None)
    assert service_consumer(svc) is None
    # Nor does a service that is not in this checkout at all.
    gone = ServiceInfo(name="gone", package="fake_not_installed_anywhere", port=1)
    assert discover_catalogue([gone], include_token_states=False).publications == ()


def test_an_import_error_inside_a_module_is_not_taken_for_a_missing_module(make_package: MakePackage) -> None:
    svc = make_package("fake_broken", {"handlers": "import fake_dependency_that_is_not_installed\nHANDLERS = {}\n"})
    with pytest.raises(ModuleNotFoundError, match="fake_dependency_that_is_not_installed"):
        service_consumer(svc)


def test_a_service_with_no_handler_has_no_queue(make_package: MakePackage) -> None:
    svc = make_package("fake_idle", {"handlers": "HANDLERS = {}\n"})
    assert service_consumer(svc) is None


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({}, "defines no HANDLERS"),
        ({"make_handlers": print}, "defines no HANDLERS"),  # the old factory shape is not read any more
        ({"HANDLERS": ["a.b.c.v1"]}, "the handlers must be a mapping"),
        ({"HANDLERS": {1: print}}, "the handlers must be a mapping"),
    ],
)
def test_handlers_of_the_wrong_shape_are_refused_naming_the_module(attributes: dict[str, object], message: str) -> None:
    with pytest.raises(CatalogueError, match=message) as refused:
        handled_types(_module("fake_pkg.handlers", **attributes))
    assert str(refused.value).startswith("fake_pkg.handlers")  # named by the module


def test_contract_pages(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "assets.md").write_text("Publishes assets.equipement.created.v1 and friends.\n")
    (docs / "planning-contract.md").write_text("planning.plan.* is the contract.\n")
    assert contract_doc("assets.equipement.created.v1", "assets", docs, tmp_path) == "docs/assets.md"
    assert contract_doc("planning.plan.created.v1", "planning", docs, tmp_path) == "docs/planning-contract.md"
    # A page outside the repository root is named by its full path.
    assert contract_doc("assets.equipement.created.v1", "assets", docs, tmp_path / "elsewhere") == (
        (docs / "assets.md").as_posix()
    )
    assert contract_doc("assets.client.created.v1", "assets", docs, tmp_path) is None  # not mentioned
    assert contract_doc("not an event type", "assets", docs, tmp_path) is None


def test_the_token_state_feed_is_in_the_catalogue_only_when_asked_for() -> None:
    feed = token_state_consumer()
    assert (feed.name, feed.queue, feed.bindings) == (
        "token-states",
        f"{QUEUE_PREFIX}.<process>.<replica>",
        (ROUTING_KEY,),
    )
    assert feed.handles == STATE_EVENT_TYPES and not feed.ack and feed.exclusive and not feed.durable
    assert discover_catalogue([], include_token_states=True).consumers == (feed,)
    assert discover_catalogue([], include_token_states=False).consumers == ()
