"""The owner clients: `ReadThrough.known` asks the owner only on a replica miss, remembers the answer
and returns the replica's row; `for_request` binds the app's client to the caller; an owner that
cannot be reached is the client's 503."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from mif_common.errors import ServiceUnavailable
from mif_common.owners import ReadThrough


class _Answer(BaseModel):
    id: int
    nom: str


class _Down(ServiceUnavailable):
    slug = "owner-down"


class _Things(ReadThrough[int, str, _Answer]):
    rows: dict[int, str]
    asked: list[tuple[int, str | None]]

    def base_url(self, settings: Any) -> str:
        return str(settings["url"])

    async def replica(self, session: AsyncSession, key: int) -> str | None:
        return self.rows.get(key)

    async def ask(self, key: int) -> _Answer | None:
        self.asked.append((key, self.authorization))
        return await self.get(f"/things/{key}", _Answer, unavailable=_Down("down", headers={"Retry-After": "5"}))

    async def remember(self, session: AsyncSession, answer: _Answer) -> None:
        self.rows[answer.id] = f"{answer.nom} (remembered)"


def _owner(request: httpx.Request) -> httpx.Response:
    thing_id = int(request.url.path.rsplit("/", 1)[-1])
    if thing_id == 404:
        return httpx.Response(404)
    return httpx.Response(
        200, json={"id": thing_id, "nom": f"thing {thing_id}", "extra": request.headers.get("authorization")}
    )


def _things(http: httpx.AsyncClient | None) -> _Things:
    state = State({"settings": {"url": "http://owner.test/"}, "http": http})
    things = _Things(state, authorization="Bearer caller")
    object.__setattr__(things, "rows", {1: "known"})
    object.__setattr__(things, "asked", [])
    return things


SESSION = cast(AsyncSession, None)


async def test_a_hit_asks_nobody_and_a_miss_is_asked_once_remembered_and_read_again() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(_owner)) as http:
        things = _things(http)
        assert await things.known(SESSION, 1) == "known"
        assert things.asked == []
        assert await things.known(SESSION, 7) == "thing 7 (remembered)"
        assert await things.known(SESSION, 7) == "thing 7 (remembered)"
        assert things.asked == [(7, "Bearer caller")]
        assert await things.known(SESSION, 404) is None


async def test_an_owner_out_of_reach_is_the_clients_503() -> None:
    with pytest.raises(_Down) as raised:
        await _things(None).known(SESSION, 7)
    assert raised.value.headers == {"Retry-After": "5"}


async def test_for_request_binds_the_apps_client_to_the_caller() -> None:
    app = FastAPI()
    built = _things(None)
    app.state.owners = {_Things: built}
    request = Request({"type": "http", "app": app, "headers": [(b"authorization", b"Bearer someone")]})
    bound = await _Things.for_request(request)
    assert isinstance(bound, _Things) and bound.authorization == "Bearer someone"
    assert built.authorization == "Bearer caller"  # the app's client is not changed
    assert bound.app_state is built.app_state
