"""End-to-end fixtures: every service and the gateway as processes on free ports, a database and a RabbitMQ
vhost of their own, a first admin made by the real bootstrap command, a real SMTP server receiving the
notifications' e-mails. Each xdist worker that runs end-to-end tests starts this suite once (the tests
spread over both workers); the scenarios that need a suite of their own (tests/reliability: faults, fuzz)
share the xdist group "own-suite", so that at most one of those runs at a time beside them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mif_common.testing.plugin import TestDatabase
from tests.support import ADMIN_EMAIL, Suite, running_suite


@pytest.fixture(scope="session")
def suite(
    mif_fresh_database: Callable[[str], TestDatabase],
    mif_amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Suite]:
    database = mif_fresh_database("e2e")
    with running_suite(database, mif_amqp_url, tmp_path_factory, label="e2e") as running:
        yield running


@pytest.fixture(scope="session")
def admin_headers(suite: Suite) -> dict[str, str]:
    return suite.login(ADMIN_EMAIL)


@pytest.fixture
def create_user(suite: Suite, admin_headers: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Create a user through the gateway as the bootstrap admin; returns the user and its headers."""

    def make(role: str, **extra: Any) -> dict[str, Any]:
        user = suite.create_user(admin_headers, role, **extra)
        user["headers"] = suite.login(user["username"])
        return user

    return make
