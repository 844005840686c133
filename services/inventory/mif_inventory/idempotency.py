"""`Idempotency-Key` on every movement: a request retried with the same key (per user) and the same body
answers what the first one answered, with `Idempotent-Replayed: true`, and moves nothing again; the same
key with another body or on another route is a 422. The key is claimed in the request's transaction:
a movement that fails is rolled back with its key, so its retry runs for real; a concurrent retry waits
for the first to commit, then replays it."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.auth import Principal
from mif_common.json_bodies import JSON_MEDIA_TYPE
from mif_inventory import repository as repo
from mif_inventory.service import CleIdempotenceReutilisee

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retry-safe movement: the same key and body answer the first result again (with "
        "`Idempotent-Replayed: true`) and move nothing; the same key with another body is 422.",
    ),
]


def fingerprint(route: str, body: BaseModel) -> str:
    """SHA-256 of the route and the parsed body (spacing and key order do not matter)."""
    return hashlib.sha256(route.encode() + b"\n" + body.model_dump_json().encode()).hexdigest()


async def once(
    session: AsyncSession,
    *,
    principal: Principal,
    key: str | None,
    route: str,
    body: BaseModel,
    status_code: int,
    run: Callable[[], Awaitable[bytes]],
) -> Response:
    """Run the movement (`run` answers the response's JSON) unless this key already did."""
    if key is None:
        return Response(await run(), status_code=status_code, media_type=JSON_MEDIA_TYPE)
    sha = fingerprint(route, body)
    if not await repo.claim_idempotency_key(session, user_id=principal.user_id, key=key, request_sha256=sha):
        earlier = await repo.idempotency_key(session, user_id=principal.user_id, key=key)
        if earlier is None or earlier.request_sha256 != sha or earlier.reponse is None:
            raise CleIdempotenceReutilisee(
                "This Idempotency-Key was already used for another request; use a new key for a new movement.",
                errors=[{"field": "Idempotency-Key", "message": "already used with another request"}],
            )
        return Response(
            earlier.reponse.encode(),
            status_code=earlier.status_code or status_code,
            media_type=JSON_MEDIA_TYPE,
            headers={"Idempotent-Replayed": "true"},
        )
    content = await run()
    await repo.set_idempotency_result(
        session, user_id=principal.user_id, key=key, status_code=status_code, reponse=content.decode()
    )
    return Response(content, status_code=status_code, media_type=JSON_MEDIA_TYPE)
