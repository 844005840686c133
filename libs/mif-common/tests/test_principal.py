"""`Principal.organisation()`: the one answer to "which organisation's rows may this caller see"."""

from __future__ import annotations

import pytest

from mif_common.auth.principal import Principal, Role
from mif_common.errors import Forbidden


@pytest.mark.parametrize("role", [Role.admin, Role.responsable, Role.technicien])
def test_no_organisation_limits_the_other_roles(role: Role) -> None:
    assert Principal(user_id=1, role=role, client_id=7).organisation() is None
    assert Principal(user_id=1, role=role).organisation() is None


def test_a_client_user_sees_its_own_organisation() -> None:
    assert Principal(user_id=1, role=Role.client, client_id=7).organisation() == 7


def test_a_client_account_linked_to_no_organisation_is_refused() -> None:
    with pytest.raises(Forbidden, match="not linked to an organisation"):
        Principal(user_id=1, role=Role.client).organisation()
