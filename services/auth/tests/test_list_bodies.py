"""The user list (one compiled statement on the session's asyncpg connection, rows written by orjson) answers
byte for byte what the previous implementation answered (ORM entities, `UserOut.model_validate`,
`jsonable_encoder`, a count and a page), for filters, sorts, searches (where `%` and `_` stay wildcards)
and pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import httpx
import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from mif_auth.api import _USER_SORT
from mif_auth.models import User
from mif_auth.schemas import UserOut
from mif_auth.testing import MakeUser
from mif_common.pagination import PageParams, fetch_page, order_by

QUERIES = [
    "",
    "limit=2&offset=1",
    "sort=-username",
    "sort=role,-created_at",
    "sort=last_login&limit=3",
    "role=technicien",
    "is_active=false",
    "is_active=true&role=client&client_id=42",
    "q=TECH",
    "q=%C3%A9l%C3%A8ne",
    "q=_",
    "q=%25nician1&sort=email",
    "offset=100",
]


async def old_answer(session: AsyncSession, query_string: str) -> tuple[bytes, int]:
    params = dict(parse_qsl(query_string))
    query = sa.select(User)
    if params.get("role"):
        query = query.where(User.role == params["role"])
    if "is_active" in params:
        query = query.where(User.is_active.is_(params["is_active"] == "true"))
    if "client_id" in params:
        query = query.where(User.client_id == int(params["client_id"]))
    q = params.get("q", "").strip() or None
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(
            sa.or_(
                sa.func.lower(User.username).like(pattern),
                sa.func.lower(User.email).like(pattern),
                sa.func.lower(User.full_name).like(pattern),
            )
        )
    page = PageParams(
        limit=int(params.get("limit", 500)), offset=int(params.get("offset", 0)), sort=params.get("sort"), q=q
    )
    query = query.order_by(*order_by(page.sort, _USER_SORT, default=[User.id]))
    rows, total = await fetch_page(session, query, page)
    return bytes(JSONResponse(jsonable_encoder([UserOut.model_validate(u) for u in rows])).body), total


async def test_the_user_list_answers_what_the_previous_implementation_did(
    client: httpx.AsyncClient, make_user: MakeUser, db_session: AsyncSession
) -> None:
    manager = await make_user("responsable")
    for role in ("technicien", "technicien", "client", "admin"):
        await make_user(role)
    helene = await make_user("technicien", full_name="Hélène Ü 😀", email="helene@example.ma")
    base = datetime(2026, 3, 1, 10, 20, 30, 123456, tzinfo=UTC)
    await db_session.execute(
        sa.update(User).values(created_at=sa.literal(base, sa.DateTime(timezone=True)) - User.id * timedelta(seconds=9))
    )
    await db_session.execute(sa.update(User).where(User.id == helene["id"]).values(is_active=False, last_login=None))
    await db_session.execute(
        sa.update(User).where(User.id == manager["id"]).values(last_login=base.replace(microsecond=0))
    )
    await db_session.commit()

    differences = []
    for query in QUERIES:
        response = await client.get(f"/api/v1/users?{query}", headers=manager["headers"])
        assert response.status_code == 200, response.text
        body, total = await old_answer(db_session, query)
        if response.content != body or response.headers["x-total-count"] != str(total):
            differences.append(f"?{query}: {response.content!r}\n  != {body!r}")
    assert not differences, "\n".join(differences)
