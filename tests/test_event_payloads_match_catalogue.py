"""Each service's event payloads are what the checked-in catalogue (docs/events/asyncapi.json) says, and
each type it consumes has a publisher: the suite-wide drift check of tests/test_event_catalogue.py, told
service by service so a failure names the service and its events. Fast: imports modules, starts nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mif_common.events.catalogue import (
    ACCEPTED_VIOLATIONS,
    ASYNCAPI_FILE,
    DOCS_DIR,
    Catalogue,
    build_asyncapi,
    discover_catalogue,
)
from mif_common.suite import ServiceInfo, built_services


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return discover_catalogue()


@pytest.fixture(scope="module")
def generated(catalogue: Catalogue) -> dict[str, Any]:
    return build_asyncapi(catalogue)


@pytest.fixture(scope="module")
def checked_in() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DOCS_DIR / ASYNCAPI_FILE).read_text(encoding="utf-8"))
    return document


def _schemas_of(document: dict[str, Any], svc: ServiceInfo) -> dict[str, Any]:
    prefix = f"{svc.name}."
    return {k: v for k, v in document["components"]["schemas"].items() if k.startswith(prefix)}


@pytest.mark.parametrize("svc", built_services(), ids=lambda s: s.name)
def test_published_payloads_are_the_catalogued_ones(
    svc: ServiceInfo, catalogue: Catalogue, generated: dict[str, Any], checked_in: dict[str, Any]
) -> None:
    published = sorted(p.event_type for p in catalogue.publications if p.service == svc.name)
    assert published, f"{svc.name} publishes nothing"
    hint = "run `make catalogue` and commit docs/events/"
    missing = [t for t in published if t not in checked_in["channels"]]
    assert missing == [], f"{svc.name}: not in the catalogue ({hint})"
    changed = [
        t for t in published if checked_in["components"]["messages"][t] != generated["components"]["messages"][t]
    ]
    assert changed == [], f"{svc.name}: messages changed ({hint})"
    assert _schemas_of(checked_in, svc) == _schemas_of(generated, svc), f"{svc.name}: payload schemas changed ({hint})"


@pytest.mark.parametrize("svc", built_services(), ids=lambda s: s.name)
def test_every_consumed_type_has_a_publisher(svc: ServiceInfo, catalogue: Catalogue) -> None:
    unexpected = [v.key for v in catalogue.violations() if v.party == svc.name and v.key not in ACCEPTED_VIOLATIONS]
    assert unexpected == []
