"""The event catalogue (mif_common.events.catalogue): the checked-in docs/events/asyncapi.json and
catalogue.md must be what the code generates, and the invariants between publishers and consumers must
hold. Fast: imports the services' modules, starts nothing."""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from mif_common.events import EventPayload
from mif_common.events.catalogue import (
    ACCEPTED_VIOLATIONS,
    ASYNCAPI_FILE,
    DOCS_DIR,
    MARKDOWN_FILE,
    Catalogue,
    CatalogueError,
    Consumer,
    Publication,
    build_asyncapi,
    build_catalogue,
    discover_catalogue,
    drift,
    render_files,
    topic_matches,
)
from mif_common.events.catalogue.__main__ import main
from mif_common.suite import ALL_SERVICES, ServiceInfo

# ------------------------------------------------------------------------------------- the real suite


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return discover_catalogue()


@pytest.fixture(scope="module")
def files(catalogue: Catalogue) -> dict[str, str]:
    return render_files(catalogue)


def test_checked_in_catalogue_matches_the_code(files: dict[str, str]) -> None:
    report = drift(DOCS_DIR, files)
    assert not report, "\n".join([*report, "Run `make catalogue` and commit docs/events/."])


def test_invariants_hold_and_the_only_violations_are_the_accepted_ones(catalogue: Catalogue) -> None:
    assert catalogue.problems() == []
    catalogue.check()
    # Known and shown in the catalogue (not hidden): documents handles an intervention deletion that
    # interventions does not publish (not in its v1 contract).
    assert {v.key for v in catalogue.violations()} == set(ACCEPTED_VIOLATIONS)


def test_every_service_and_the_token_state_feed_are_in_the_catalogue(catalogue: Catalogue) -> None:
    assert {p.service for p in catalogue.publications} == {s.name for s in ALL_SERVICES}
    consumers = {c.name: c for c in catalogue.consumers}
    assert set(consumers) == {
        "auth",
        "assets",
        "interventions",
        "planning",
        "documents",
        "notifications",
        "inventory",
        "reports",
        "token-states",
    }
    assert consumers["assets"].queue == "mif.assets"
    # The gateway and every service but auth follow auth.user.* on a queue per process.
    feed = consumers["token-states"]
    assert feed.queue == "mif.token-states.<process>.<replica>" and feed.exclusive and not feed.ack
    assert feed.bindings == ("auth.user.#",)
    assert feed.handles == {f"auth.user.{v}.v1" for v in ("created", "updated", "deactivated", "activated")}
    # Handlers that read a setting (from their session) are in the registry like any other.
    assert "planning.occurrence.due.v1" in consumers["interventions"].handles
    assert "planning.technicien.created.v1" in consumers["documents"].handles
    # Abstract payload bases are not event types.
    assert all(p.model.__name__ not in {"InterventionEvent", "TechnicienEvent"} for p in catalogue.publications)


def test_discovery_agrees_with_the_services_own_lists_of_events(catalogue: Catalogue) -> None:
    import importlib

    for service in ALL_SERVICES:
        module = importlib.import_module(f"{service.package}.events")
        listed = {m.event_type for m in getattr(module, "ALL_EVENTS", ())}
        found = {p.event_type for p in catalogue.publications if p.service == service.name}
        assert listed == found, service.name


def test_payload_schemas_differ_between_modes_only_by_required(catalogue: Catalogue) -> None:
    """Why validation mode is enough: no serializer changes a type; only `required` could differ."""
    for publication in catalogue.publications:
        validation = publication.model.model_json_schema(mode="validation")
        serialization = publication.model.model_json_schema(mode="serialization")

        def strip(node: Any) -> Any:
            if isinstance(node, dict):
                return {k: strip(v) for k, v in node.items() if k != "required"}
            if isinstance(node, list):
                return [strip(v) for v in node]
            return node

        assert strip(validation) == strip(serialization), publication.event_type


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"unresolvable {ref}"
        node = node[part]
    return node


def test_asyncapi_document_is_well_formed(files: dict[str, str], catalogue: Catalogue) -> None:
    text = files[ASYNCAPI_FILE]
    assert text.endswith("}\n")
    document = json.loads(text)
    assert json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n" == text
    assert document["asyncapi"] == "3.0.0"
    for ref in set(_refs(document)):
        _resolve(document, ref)
    key = re.compile(r"^[a-zA-Z0-9.\-_]+$")
    for part in ("channels", "operations"):
        assert all(key.match(k) for k in document[part]), part
    for part in ("schemas", "messages", "messageTraits"):
        assert all(key.match(k) for k in document["components"][part]), part
    assert set(document["channels"]) == set(catalogue.event_types())
    for event_type, channel in document["channels"].items():
        assert channel["address"] == event_type
        assert channel["bindings"]["amqp"]["exchange"]["name"] == "mif.events"
        ops = [op for op in document["operations"].values() if op["channel"]["$ref"] == f"#/channels/{event_type}"]
        sends = [op for op in ops if op["action"] == "send"]
        receives = {op["x-mif-service"] for op in ops if op["action"] == "receive"}
        assert receives == {c.name for c in catalogue.consumers_of(event_type)}
        publication = catalogue.publication(event_type)
        if publication is None:
            assert sends == [] and "x-mif-unpublished" in document["components"]["messages"][event_type]
            continue
        assert [op["x-mif-service"] for op in sends] == [publication.service]
        message = document["components"]["messages"][event_type]
        assert message["x-mif-event"]["version"] == int(event_type.rsplit(".v", 1)[1])
        data_ref = message["payload"]["allOf"][1]["properties"]["data"]["$ref"]
        assert _resolve(document, data_ref)["title"] == publication.model.__name__


def test_descriptions_come_from_the_docstrings(files: dict[str, str]) -> None:
    messages = json.loads(files[ASYNCAPI_FILE])["components"]["messages"]
    assert messages["planning.occurrence.due.v1"]["description"].startswith("One occurrence of a plan fell due")
    # No docstring of its own: its payload base's (never EventPayload's generic one).
    assert messages["planning.technicien.created.v1"]["description"].startswith("A snapshot of a technician")
    assert "description" not in messages["auth.user.created.v1"]
    assert messages["auth.user.created.v1"]["summary"] == "user created"


def test_markdown_links_the_hand_written_contracts(files: dict[str, str]) -> None:
    page = files[MARKDOWN_FILE]
    assert page.endswith("\n") and not page.endswith("\n\n")

    def row(event_type: str) -> str:
        return next(line for line in page.splitlines() if line.startswith(f"| [`{event_type}`]"))

    created, closed = row("interventions.intervention.created.v1"), row("interventions.intervention.closed.v1")
    assert "[interventions-contract.md](interventions-contract.md)" in closed
    assert "assets, documents, inventory, notifications, planning" in created
    # Each consumer takes the facts that change what it keeps (ADR 0001, point 11): not documents here.
    assert "| interventions | assets, inventory, notifications, planning, reports |" in closed
    for link in re.findall(r"\]\(([\w.-]+\.md)\)", page):
        assert (DOCS_DIR / link).is_file(), link
    assert "| [`interventions.intervention.deleted.v1`](#interventionsinterventiondeletedv1) | **none** |" in page


def test_output_is_stable(catalogue: Catalogue, files: dict[str, str]) -> None:
    assert render_files(catalogue) == files


# ------------------------------------------------------------------------------------- drift and the CLI


def test_drift_names_what_changed(tmp_path: Path, files: dict[str, str]) -> None:
    assert drift(tmp_path, files) == [f"{tmp_path / name}: missing" for name in files]
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    assert drift(tmp_path, files) == []

    document = json.loads(files[ASYNCAPI_FILE])
    del document["channels"]["auth.user.created.v1"]
    document["components"]["schemas"]["assets.ClientCreated"]["properties"]["nom_entreprise"]["type"] = "integer"
    (tmp_path / ASYNCAPI_FILE).write_text(json.dumps(document), encoding="utf-8")
    (tmp_path / MARKDOWN_FILE).write_text(files[MARKDOWN_FILE].replace("auth", "authn", 1), encoding="utf-8")
    report = "\n".join(drift(tmp_path, files))
    assert f"{tmp_path / ASYNCAPI_FILE}: out of date" in report
    assert "channels missing: auth.user.created.v1" in report
    assert "components.schemas changed: assets.ClientCreated" in report
    assert f"{tmp_path / MARKDOWN_FILE}: out of date" in report
    assert "+" in report and "authn" in report


def test_cli_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check", "--output-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "drifted" in err and ASYNCAPI_FILE in err and "make catalogue" in err
    assert main(["--output-dir", str(tmp_path)]) == 0
    assert main(["--check", "--output-dir", str(tmp_path)]) == 0
    assert "up to date" in capsys.readouterr().out
    (tmp_path / ASYNCAPI_FILE).write_text("{}\n", encoding="utf-8")
    assert main(["--check", "--output-dir", str(tmp_path)]) == 1
    assert "channels missing" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- invariants, made-up services


class OrderPlaced(EventPayload):
    """An order was placed."""

    event_type: ClassVar[str] = "shop.order.placed.v1"
    order_id: int


class OrderShipped(EventPayload):
    event_type: ClassVar[str] = "shop.order.shipped.v2"
    order_id: int


def pub(model: type[EventPayload], service: str = "shop", event_type: str | None = None) -> Publication:
    return Publication(event_type=event_type or model.event_type, service=service, model=model)


def consumer(name: str, *types_: str, bindings: tuple[str, ...] | None = None) -> Consumer:
    return Consumer(name=name, queue=f"mif.{name}", bindings=bindings or tuple(types_), handles=frozenset(types_))


def codes(catalogue: Catalogue) -> list[tuple[str, str, str]]:
    return [v.key for v in catalogue.violations()]


def test_a_sound_catalogue_has_no_violation() -> None:
    catalogue = build_catalogue(
        [pub(OrderPlaced), pub(OrderShipped)], [consumer("billing", "shop.order.placed.v1", "shop.order.shipped.v2")]
    )
    assert catalogue.violations() == []
    catalogue.check()


def test_a_typo_in_a_handler_key_is_an_orphan_consumer() -> None:
    catalogue = build_catalogue([pub(OrderPlaced)], [consumer("billing", "shop.order.plcaed.v1")])
    assert codes(catalogue) == [("orphan-consumer", "shop.order.plcaed.v1", "billing")]
    with pytest.raises(CatalogueError, match=r"billing consumes shop\.order\.plcaed\.v1 but no service publishes it"):
        catalogue.check()


def test_a_consumed_older_version_nobody_publishes_any_more_is_an_orphan() -> None:
    catalogue = build_catalogue([pub(OrderShipped)], [consumer("billing", "shop.order.shipped.v1")])
    assert codes(catalogue) == [("orphan-consumer", "shop.order.shipped.v1", "billing")]


def test_the_prefix_must_name_the_publisher() -> None:
    catalogue = build_catalogue([pub(OrderPlaced, service="billing")], [])
    assert codes(catalogue) == [("wrong-prefix", "shop.order.placed.v1", "billing")]


@pytest.mark.parametrize(
    "event_type",
    ["shop.order.placed", "shop.order.placed.v0", "shop.placed.v1", "Shop.order.placed.v1", "shop.order.placed.v1.x"],
)
def test_event_types_must_be_service_entity_verb_version(event_type: str) -> None:
    catalogue = build_catalogue([pub(OrderPlaced, event_type=event_type)], [])
    assert codes(catalogue) == [("bad-name", event_type, "shop")]


def test_one_type_has_exactly_one_publisher() -> None:
    class OrderPlacedAgain(EventPayload):
        event_type: ClassVar[str] = "shop.order.placed.v1"

    catalogue = build_catalogue([pub(OrderPlaced), pub(OrderPlacedAgain)], [])
    assert codes(catalogue) == [("duplicate-publisher", "shop.order.placed.v1", "shop")]


def test_a_handled_type_must_be_bound_to_the_queue() -> None:
    catalogue = build_catalogue(
        [pub(OrderPlaced), pub(OrderShipped)],
        [consumer("gateway", "shop.order.placed.v1", "shop.order.shipped.v2", bindings=("shop.order.placed.#",))],
    )
    assert codes(catalogue) == [("unbound-handler", "shop.order.shipped.v2", "gateway")]


def test_accepted_exceptions_are_shown_and_must_not_go_stale() -> None:
    reason = "handled before the publisher exists"
    key = ("orphan-consumer", "shop.order.cancelled.v1", "billing")
    accepted = build_catalogue(
        [pub(OrderPlaced)], [consumer("billing", "shop.order.cancelled.v1")], accepted={key: reason}
    )
    assert accepted.problems() == []
    document = build_asyncapi(accepted)
    assert document["components"]["messages"]["shop.order.cancelled.v1"]["x-mif-unpublished"] == reason
    assert not any(op["action"] == "send" and "cancelled" in name for name, op in document["operations"].items())

    stale = build_catalogue([pub(OrderPlaced)], [consumer("billing", "shop.order.placed.v1")], accepted={key: reason})
    assert stale.problems() == [
        "[stale-exception] orphan-consumer shop.order.cancelled.v1 (billing) is accepted but no longer happens: "
        "remove it from the accepted exceptions"
    ]


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("auth.user.#", "auth.user.created.v1", True),
        ("auth.user.#", "auth.user", True),
        ("auth.user.*", "auth.user.created.v1", False),
        ("auth.*.created.v1", "auth.user.created.v1", True),
        ("#", "a.b", True),
        ("auth.user.created.v1", "auth.user.created.v2", False),
        ("#.v1", "auth.user.created.v1", True),
    ],
)
def test_topic_matching(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


# ------------------------------------------------------------------------------------- discovery, made-up modules


async def _noop(*_: Any) -> None:
    return None


@pytest.fixture
def fake_services(monkeypatch: pytest.MonkeyPatch) -> list[ServiceInfo]:
    shop_events = types.ModuleType("mif_shop.events", "Events the shop publishes.")

    class OrderEvent(EventPayload):  # abstract: no event_type
        order_id: int

    class Placed(OrderEvent):
        event_type: ClassVar[str] = "shop.order.placed.v1"

    for cls in (OrderEvent, Placed):
        cls.__module__ = shop_events.__name__
    shop_events.OrderEvent = OrderEvent  # type: ignore[attr-defined]
    shop_events.Placed = Placed  # type: ignore[attr-defined]
    shop_events.Imported = OrderShipped  # type: ignore[attr-defined]  # defined elsewhere: not shop's

    billing_handlers = types.ModuleType("mif_billing.handlers")
    billing_handlers.HANDLERS = {"shop.order.placed.v1": _noop, "billing.invoice.paid.v1": _noop}  # type: ignore[attr-defined]
    shop_handlers = types.ModuleType("mif_shop.handlers")
    shop_handlers.HANDLERS = {"billing.invoice.payed.v1": _noop}  # type: ignore[attr-defined]  # typo
    billing_events = types.ModuleType("mif_billing.events")

    class InvoicePaid(EventPayload):
        event_type: ClassVar[str] = "billing.invoice.paid.v1"

    InvoicePaid.__module__ = billing_events.__name__
    billing_events.InvoicePaid = InvoicePaid  # type: ignore[attr-defined]
    for module in (shop_events, shop_handlers, billing_events, billing_handlers):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(sys.modules, "mif_shop", types.ModuleType("mif_shop"))
    monkeypatch.setitem(sys.modules, "mif_billing", types.ModuleType("mif_billing"))
    return [ServiceInfo("shop", "mif_shop", 9101), ServiceInfo("billing", "mif_billing", 9102)]


def test_discovery_by_importlib(fake_services: list[ServiceInfo], tmp_path: Path) -> None:
    (tmp_path / "shop.md").write_text("# `shop.order.*.v1`\n", encoding="utf-8")
    catalogue = discover_catalogue(
        fake_services, include_token_states=False, docs_dir=tmp_path, repo_root=tmp_path.parent, accepted={}
    )
    assert [(p.event_type, p.service, p.model.__name__) for p in catalogue.publications] == [
        ("billing.invoice.paid.v1", "billing", "InvoicePaid"),
        ("shop.order.placed.v1", "shop", "Placed"),
    ]
    assert catalogue.publication("shop.order.placed.v1").contract == f"{tmp_path.name}/shop.md"  # type: ignore[union-attr]
    assert catalogue.publication("billing.invoice.paid.v1").contract is None  # type: ignore[union-attr]
    assert {c.name: set(c.handles) for c in catalogue.consumers} == {
        "billing": {"shop.order.placed.v1", "billing.invoice.paid.v1"},
        "shop": {"billing.invoice.payed.v1"},
    }
    assert catalogue.service_descriptions == {"billing": "", "shop": "Events the shop publishes."}
    assert codes(catalogue) == [("orphan-consumer", "billing.invoice.payed.v1", "shop")]


def test_a_service_without_modules_is_skipped() -> None:
    catalogue = discover_catalogue(
        [ServiceInfo("ghost", "mif_ghost_not_installed", 9199)], include_token_states=False, accepted={}
    )
    assert catalogue.publications == () and catalogue.consumers == ()


def test_a_typo_in_a_real_handler_table_fails_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import mif_notifications.handlers as handlers

    monkeypatch.setitem(handlers.HANDLERS, "documents.document.uploded.v1", handlers.on_document_uploaded)
    catalogue = discover_catalogue()
    with pytest.raises(CatalogueError, match=r"notifications consumes documents\.document\.uploded\.v1"):
        catalogue.check()


def test_the_image_ships_the_catalogue_the_gateway_serves() -> None:
    from tests.test_deploy_manifests import dockerfile_instructions, dockerignored

    copies = [rest for keyword, rest in dockerfile_instructions() if keyword == "COPY"]
    assert ". ." in copies and "--from=builder /app /app" in copies  # the source tree, docs/ included
    for name in (ASYNCAPI_FILE, MARKDOWN_FILE):
        assert not dockerignored(f"docs/events/{name}")
