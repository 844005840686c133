"""Asking the service that owns an entity about it, when the local replica has missed it.

A service learns other services' entities from their events; on a miss it asks the owner once over HTTP,
forwarding the caller's `Authorization` (so the owner applies the caller's own row-level rules) and the
request id, then caches the answer in its replica. One place for what such a question may answer
(`ask_owner`), and one shape for the clients that ask it (`OwnerClient`, `ReadThrough`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any, Generic, Self, TypeVar

import httpx
from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from mif_common.errors import DomainError
from mif_common.request_context import current_request_id

logger = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=BaseModel)
Key = TypeVar("Key")
Known = TypeVar("Known")


async def ask_owner(
    http: httpx.AsyncClient | None,
    url: str,
    model: type[Answer],
    *,
    authorization: str | None,
    unavailable: DomainError,
    timeout_seconds: float = 3.0,
    absent: Collection[int] = (404,),
) -> Answer | None:
    """GET `url` as the caller: the body as `model`, or None when the owner answers one of `absent`
    (it does not know the entity, or does not show it to the caller). No answer, another status or a
    body that is not `model` raise `unavailable`: the reference cannot be checked now (a 503 to retry)."""
    if http is None:
        raise unavailable
    headers = {"Authorization": authorization} if authorization else {}
    if request_id := current_request_id():
        headers["X-Request-ID"] = request_id
    try:
        response = await http.get(url, headers=headers, timeout=timeout_seconds)
    except httpx.HTTPError as exc:
        logger.warning("read-through: GET %s failed: %r", url, exc)
        raise unavailable from exc
    if response.status_code in absent:
        return None
    if response.status_code != 200:
        logger.warning("read-through: GET %s answered %s", url, response.status_code)
        raise unavailable
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        logger.warning("read-through: GET %s answered an unexpected body", url)
        raise unavailable from exc


@dataclass(frozen=True)
class OwnerClient:
    """A typed client of one owning service, so that a service's code never carries the HTTP client, the
    owner's address and the caller's `Authorization` around as loose arguments.

    Built once per app at start-up (`ServiceParts.owners`, kept in `app.state.owners`) and bound to each
    request's caller by its FastAPI dependency (`for_request`). The app's settings and HTTP client are
    read from `app_state` at each question, not copied: tests swap them on a running app."""

    app_state: State
    authorization: str | None = None

    def base_url(self, settings: Any) -> str:
        """The owner's address, from the app's settings."""
        raise NotImplementedError

    def timeout_seconds(self, settings: Any) -> float:
        return 3.0

    @classmethod
    async def for_request(cls, request: Request) -> Self:
        """The FastAPI dependency: the app's client of this owner, asking as the request's caller (a
        coroutine, so that FastAPI does not hand it to its thread pool as it does a plain function)."""
        built: Self = request.app.state.owners[cls]
        return replace(built, authorization=request.headers.get("authorization"))

    async def get(
        self, path: str, model: type[Answer], *, unavailable: DomainError, absent: Collection[int] = (404,)
    ) -> Answer | None:
        """`ask_owner` for `path` under the owner's address, as the bound caller."""
        settings = self.app_state.settings
        return await ask_owner(
            self.app_state.http,
            f"{self.base_url(settings).rstrip('/')}{path}",
            model,
            authorization=self.authorization,
            unavailable=unavailable,
            timeout_seconds=self.timeout_seconds(settings),
            absent=absent,
        )


class ReadThrough(OwnerClient, Generic[Key, Known, Answer]):
    """An owner client behind a local replica: `known` reads the replica and, on a miss, asks the owner,
    remembers its answer in the replica and reads it again (so what is returned is always the replica's
    row, whatever the order in which the answer and an event arrive)."""

    async def replica(self, session: AsyncSession, key: Key) -> Known | None:
        raise NotImplementedError

    async def ask(self, key: Key) -> Answer | None:
        """The owner's answer about `key`; None when it does not know it or does not show it to the caller."""
        raise NotImplementedError

    async def remember(self, session: AsyncSession, answer: Answer) -> None:
        raise NotImplementedError

    async def known(self, session: AsyncSession, key: Key) -> Known | None:
        """The replica's row for `key`, asking the owner once on a miss; None when the owner does not show it."""
        found = await self.replica(session, key)
        if found is not None:
            return found
        answer = await self.ask(key)
        if answer is None:
            return None
        await self.remember(session, answer)
        return await self.replica(session, key)
