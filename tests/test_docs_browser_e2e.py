"""The API docs render in a real browser with no internet (issue 20): a plant network has none, and a
Swagger UI that pulls its JavaScript from a CDN stays blank there.

Headless Chromium (Debian's package, driven by Playwright) opens the gateway's `/docs`, one service's docs
through the gateway and `/docs/events`, with every request to anything but this machine refused, and
checks that each page rendered its operations (or events) and that nothing tried to leave the machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.support import Suite

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_offline(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """A page at `url` whose requests off this machine are refused (and recorded)."""
    page = browser.new_page()
    refused: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_local)
    page.goto(url)
    return page, refused


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/docs", "/api/v1/interventions"),  # the combined document: every service's operations
        ("/api/v1/planning/docs", "/api/v1/techniciens/recommandation"),  # one service, through the gateway
    ],
)
def test_swagger_ui_renders_its_operations_offline(suite: Suite, browser: Browser, path: str, expected: str) -> None:
    page, refused = open_offline(browser, suite.url + path)
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) > 10 and any(p.replace("\u200b", "").startswith(expected) for p in paths), paths[:20]
    assert refused == []
    page.close()


def test_the_event_catalogue_page_renders_offline(suite: Suite, browser: Browser) -> None:
    page, refused = open_offline(browser, suite.url + "/docs/events")
    headings = page.locator("section h3").all_inner_texts()
    assert "interventions.intervention.assigned.v1" in headings and len(headings) > 20, headings
    assert refused == []
    page.close()
