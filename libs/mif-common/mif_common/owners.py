"""Asking the service that owns an entity about it, when the local replica has missed it.

A service learns other services' entities from their events; on a miss it asks the owner once over HTTP,
forwarding the caller's `Authorization` (so the owner applies the caller's own row-level rules) and the
request id, then caches the answer in its replica. One place for what such a question may answer.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from mif_common.errors import DomainError
from mif_common.request_context import current_request_id

logger = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=BaseModel)


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
