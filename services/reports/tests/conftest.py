from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mif_common.testing.plugin import ServiceUnderTest
from mif_reports.config import ReportsSettings
from mif_reports.handlers import HANDLERS
from mif_reports.main import create_app

Headers = dict[str, str]
ADMIN_ID, MANAGER_ID, TECH_USER_ID, OTHER_TECH_USER_ID = 1001, 1002, 1003, 1004
TECH_ID, OTHER_TECH_ID = 501, 502
CLIENT_A, CLIENT_B = 71, 72


@pytest.fixture(scope="session")
def exports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports-exports")


@pytest.fixture(scope="session")
def mif_service(exports_dir: Path) -> ServiceUnderTest:
    return ServiceUnderTest(
        "reports", ReportsSettings, create_app, handlers=HANDLERS, settings_overrides={"exports_dir": exports_dir}
    )


@pytest.fixture
def manager(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("responsable", user_id=MANAGER_ID)


@pytest.fixture
def technicien(auth_headers: Callable[..., Headers]) -> Headers:
    return auth_headers("technicien", user_id=TECH_USER_ID)


@pytest.fixture
def client_user(auth_headers: Callable[..., Headers]) -> Callable[[int], Headers]:
    return lambda client_id: auth_headers("client", user_id=2000 + client_id, client_id=client_id)
