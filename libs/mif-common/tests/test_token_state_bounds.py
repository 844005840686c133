"""The token-state table's memory of questions is bounded: tokens naming ever new unknown users, or ever
new token versions, cannot grow it past `max_unknown`; the oldest remembered answer goes first."""

from __future__ import annotations

import asyncio

from mif_common.auth.principal import Principal, Role
from mif_common.auth.token_state import DEACTIVATED, UNKNOWN_USER, TokenStates, UserState
from mif_common.errors import Unauthorized


def who(user_id: int, tv: int = 0) -> Principal:
    return Principal(user_id=user_id, role=Role.technicien, token_version=tv)


async def refusal(states: TokenStates, principal: Principal) -> str | None:
    try:
        await states.check(principal)
    except Unauthorized as exc:
        return exc.detail
    return None


async def test_remembered_unknown_users_are_bounded_oldest_forgotten_first() -> None:
    asked: list[int] = []

    async def auth(user_id: int) -> UserState | None:
        asked.append(user_id)
        return None

    states = TokenStates(lookup=auth, max_unknown=2)
    for user_id in (101, 102, 103):  # 103 pushes 101 out
        assert await refusal(states, who(user_id)) == UNKNOWN_USER
    assert await refusal(states, who(102)) == UNKNOWN_USER
    assert await refusal(states, who(103)) == UNKNOWN_USER
    assert asked == [101, 102, 103]  # still remembered: no new question
    assert await refusal(states, who(101)) == UNKNOWN_USER
    assert asked == [101, 102, 103, 101]  # forgotten: asked again


async def test_remembered_newer_token_versions_are_bounded() -> None:
    asked: list[int] = []

    async def auth(user_id: int) -> UserState | None:
        asked.append(user_id)
        return UserState(False, 1)

    states = TokenStates(lookup=auth, max_unknown=2)
    states.apply_event(5, is_active=False, token_version=1)
    for tv in (2, 3, 4):  # versions auth never issued; 4 pushes 2 out
        assert await refusal(states, who(5, tv=tv)) == DEACTIVATED
    assert asked == [5, 5, 5]
    assert await refusal(states, who(5, tv=4)) == DEACTIVATED
    assert asked == [5, 5, 5]
    assert await refusal(states, who(5, tv=2)) == DEACTIVATED
    assert asked == [5, 5, 5, 5]


async def test_an_answer_that_an_event_overtook_is_not_remembered_as_unknown() -> None:
    """auth answered "unknown" (its replica was behind) while the user's creation event arrived: the
    event wins, the user is not refused for the unknown-user period."""
    states: TokenStates

    async def auth(user_id: int) -> UserState | None:
        states.apply_event(user_id, is_active=True, token_version=0)  # the event, while auth answers
        await asyncio.sleep(0)
        return None

    states = TokenStates(lookup=auth)
    assert await refusal(states, who(77)) is None
    assert await refusal(states, who(77)) is None
    assert states.lookups == 1


async def test_refusal_without_io() -> None:
    states = TokenStates()
    states.apply_event(9, is_active=False, token_version=1)
    assert states.refusal(who(9, tv=1)) == DEACTIVATED
    assert states.refusal(who(10)) is None  # not known here: `check` decides
