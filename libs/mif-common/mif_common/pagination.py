"""List parameters (`limit`, `offset`, `sort`, `q`) and bare-array responses with paging headers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote_plus

from fastapi import Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from mif_common.errors import Unprocessable
from mif_common.json_bodies import JSON_MEDIA_TYPE, dump_models

Sortable = ColumnElement[Any] | QueryableAttribute[Any]

MAX_LIMIT = 500
# The existing frontend never pages: a list asked for without `limit` answers the largest page, so that
# nothing past the first page is hidden from it (DOMAIN.md §8). Callers that page say how much they want.
DEFAULT_LIMIT = MAX_LIMIT


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    offset: int
    sort: str | None
    q: str | None


async def page_params(  # async: FastAPI runs a plain `def` dependency in a worker thread
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 500; without it, 500).")
    ] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")] = 0,
    sort: Annotated[
        str | None,
        Query(max_length=200, description="Comma-separated fields, `-` for descending: `-date_creation,id`."),
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="Text search.")] = None,
) -> PageParams:
    """FastAPI dependency for the common list parameters."""
    return PageParams(limit=limit, offset=offset, sort=sort, q=q.strip() if q and q.strip() else None)


def order_by(
    sort: str | None,
    allowed: Mapping[str, Sortable],
    *,
    default: Sequence[Sortable],
) -> list[Any]:
    """Translate `sort` into ORDER BY clauses; an unknown field is a 422 naming the allowed ones."""
    if not sort:
        return list(default)
    clauses: list[Any] = []
    for raw in sort.split(","):
        name = raw.strip()
        if not name:
            continue
        descending = name.startswith("-")
        name = name.lstrip("+-")
        column = allowed.get(name)
        if column is None:
            raise Unprocessable(
                f"Cannot sort by '{name}'. Sortable fields: {', '.join(sorted(allowed))}.",
                errors=[{"field": "sort", "message": f"unknown sort field '{name}'"}],
            )
        clauses.append(column.desc() if descending else column.asc())
    # A unique tiebreaker keeps pages stable when sort keys repeat.
    clauses.extend(default)
    return clauses


async def fetch_page(session: AsyncSession, query: Select[Any], params: PageParams) -> tuple[list[Any], int]:
    """Run `query` for one page plus its total count."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = (await session.scalars(query.limit(params.limit).offset(params.offset))).all()
    return list(rows), int(total or 0)


def page_response(request: Request, items: Sequence[BaseModel], *, total: int, params: PageParams) -> Response:
    """A bare JSON array (what existing clients expect) with `X-Total-Count` and `Link` headers.

    The models are written by pydantic's own serializer (`json_bodies.dump_models`): the bytes
    `JSONResponse(jsonable_encoder(items))` wrote, for a twentieth of the CPU."""
    return json_page(request, dump_models(items), total=total, params=params)


def json_page(request: Request, body: bytes, *, total: int, params: PageParams) -> Response:
    """A list's JSON array, already written (`json_bodies.dump_rows`, `dump_models`), with its headers."""
    return Response(body, media_type=JSON_MEDIA_TYPE, headers=page_headers(request, total=total, params=params))


_PAGING = ("offset", "limit")

# Proxies refuse a response header longer than a few kB and answer 502 in its place (the gateway's aiohttp
# client: 8190 bytes; nginx: its 4-8 kB proxy buffer). The links repeat the caller's query string up to
# four times, so a long one (a filter repeated, an unknown parameter of kilobytes) would turn a list into
# a 502. Past this size the links are left out; `X-Total-Count` is always there.
MAX_LINK_HEADER = 4096


def page_headers(request: Request, *, total: int, params: PageParams) -> dict[str, str]:
    """`X-Total-Count` and `Link` (first, prev, next, last) of one page, for lists serialised by hand.

    Each link repeats the caller's query string as it came (every value of a repeated parameter, in
    order) with `offset` and `limit` set; the rest of it is encoded once for all the links. No `Link`
    when it would be longer than `MAX_LINK_HEADER`."""
    parts: list[str] = []  # encoded `key=value` pairs; "" where offset and limit go
    slots: dict[str, int] = {}
    for key, value in request.query_params.multi_items():
        if key in _PAGING:
            if key not in slots:
                slots[key] = len(parts)
                parts.append("")
        else:
            parts.append(f"{quote_plus(key)}={quote_plus(value)}")
    for key in _PAGING:
        if key not in slots:
            slots[key] = len(parts)
            parts.append("")
    path = request.url.path
    limit = f"limit={params.limit}"

    def link(offset: int, rel: str) -> str:
        parts[slots["offset"]] = f"offset={offset}"
        parts[slots["limit"]] = limit
        return f'<{path}?{"&".join(parts)}>; rel="{rel}"'

    links = [link(0, "first")]
    if params.offset > 0:
        links.append(link(max(0, params.offset - params.limit), "prev"))
    if params.offset + params.limit < total:
        links.append(link(params.offset + params.limit, "next"))
    last = max(0, ((total - 1) // params.limit) * params.limit) if total else 0
    links.append(link(last, "last"))
    header = ", ".join(links)
    if len(header) > MAX_LINK_HEADER:
        return {"X-Total-Count": str(total)}
    return {"X-Total-Count": str(total), "Link": header}
