"""Lists on the hot path: one statement per request, compiled once per shape, run on the asyncpg
connection, rows written as JSON by orjson.

The pattern of the interventions list (docs/interventions.md; bench/README.md has the profile), for every
service's lists:

- **One statement** answers the page and its total (the count rides along as an uncorrelated scalar
  subquery, evaluated once); past the last page the total is counted on its own.
- **Compiled once per shape.** A shape is which WHERE terms a request uses and its `sort`; every value is
  a named parameter, so the SQL text of a shape never changes. Building a select and letting SQLAlchemy
  find it in its compiled cache costs ~1 ms of CPU per request for a wide row, the ORM execution path and
  loading entities another ~1-2 ms; a dict look-up and asyncpg's own prepared statement cost neither.
- **No session, no transaction**: an AUTOCOMMIT connection (`ReadConnections`); one statement needs none.
- **Rows as the model's fields**, selected under the names the API shows and written by orjson
  (`json_bodies.dump_rows`), without validating each row into a pydantic model.
- **A search finds its matches first** (`search_page`): a statement with `q` never walks an index in
  the sort's order hoping to meet 50 matches early.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from pydantic import BaseModel, functional_serializers, functional_validators
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from mif_common.db import autocommit_connection
from mif_common.pagination import Sortable, order_by
from mif_common.statements import CompiledSql, fetch

# --- the connection ---------------------------------------------------------------------------------

ConnectionSource = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


async def read_connections(request: Request) -> ConnectionSource:
    """How a list opens its connection: outside any transaction (AUTOCOMMIT), without a session (~0.2 ms
    of CPU to set up, and BEGIN/COMMIT round trips). The endpoint opens it (`async with`) rather than a
    `yield` dependency, whose exit stack costs FastAPI ~0.1 ms. Tests override this dependency
    (`mif_common.testing.plugin`) to run lists inside the test's transaction."""
    engine: AsyncEngine = request.app.state.engine
    return lambda: autocommit_connection(engine)


ReadConnections = Annotated[ConnectionSource, Depends(read_connections)]


def connections_of(session: AsyncSession) -> Callable[[], Awaitable[ConnectionSource]]:
    """An override of `read_connections` (`app.dependency_overrides[read_connections] = ...`): lists
    read on `session`'s connection, inside its transaction (tests, in-process services of tests)."""

    @asynccontextmanager
    async def connection() -> AsyncIterator[AsyncConnection]:
        yield await session.connection()

    async def source() -> ConnectionSource:
        return connection

    return source


# --- list statements ----------------------------------------------------------------------------

LIMIT = sa.bindparam("limit", type_=sa.Integer())
OFFSET = sa.bindparam("offset", type_=sa.Integer())


def sort_keys(order: Sequence[Any]) -> list[tuple[sa.ColumnElement[Any], bool]]:
    """ORDER BY clauses (`order_by`'s `column.asc()` / `.desc()`, or a bare column: ascending) as
    (expression, descending)."""
    keys: list[tuple[sa.ColumnElement[Any], bool]] = []
    for clause in order:
        expression = clause.__clause_element__() if hasattr(clause, "__clause_element__") else clause
        modifier = expression.modifier if isinstance(expression, UnaryExpression) else None
        if modifier in (operators.asc_op, operators.desc_op):
            keys.append((expression.element, modifier is operators.desc_op))
        elif modifier is not None:  # NULLS FIRST / LAST
            raise AssertionError(f"a list sort must be ascending or descending, not {clause!r}")
        elif isinstance(expression, sa.ColumnElement):
            keys.append((expression, False))
        else:
            raise AssertionError(f"a list sort must be a column expression, not {clause!r}")
    return keys


def plain_page(
    columns: Sequence[Any], source: Any, clauses: Sequence[sa.ColumnElement[bool]], order: Sequence[Any]
) -> sa.Select[Any]:
    """The page (`columns` of `source` where `clauses`, in `order`) with the total in its last column."""
    total = sa.select(sa.func.count()).select_from(source).where(*clauses)
    return (
        sa.select(*columns, total.scalar_subquery().correlate(None).label("_total"))
        .select_from(source)
        .where(*clauses)
        .order_by(*order)
        .limit(LIMIT)
        .offset(OFFSET)
    )


def search_page(
    columns: Sequence[Any],
    source: Any,
    key: Sortable,
    clauses: Sequence[sa.ColumnElement[bool]],
    order: Sequence[Any],
) -> sa.Select[Any]:
    """The page of a search (a `q` among `clauses`): the matches are found first, then sorted and paged,
    whatever the sort. Same rows, order and total as `plain_page`.

    Planned as one query, `ORDER BY ... LIMIT 50` tempts PostgreSQL to walk an index in the sort's order
    (the primary key, by default) and test `q` on each row until 50 match: cheap when matches are spread
    evenly, a walk through most of the table when they are not (interventions `q=12`: 1 % of the rows,
    all of them old, 87,000 rows visited, 22 ms; bench/README.md). So the matches' `key` (unique: the
    primary key) and sort keys are collected in a MATERIALIZED CTE, which the planner cannot merge into
    the outer query: its only way in is the WHERE (the search's index, or a sharper index of another
    filter), never the ORDER BY. The page is a top-N sort of that set, joined back to `source` by `key`
    for its rows, and the total counts the same set (one pass over the matches instead of two)."""
    keys = sort_keys(order)
    key_expression: sa.ColumnElement[Any] = key.__clause_element__() if isinstance(key, QueryableAttribute) else key
    # Each sort key as a column of the CTE (`k<n>`), the key itself where it is one (the default sort).
    names = ["key" if element.compare(key_expression) else f"k{n}" for n, (element, _) in enumerate(keys)]
    extra = [element.label(name) for name, (element, _) in zip(names, keys, strict=True) if name != "key"]
    matches = (
        sa.select(key.label("key"), *extra)
        .select_from(source)
        .where(*clauses)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )

    def ordering(rows: sa.CTE | sa.Subquery) -> list[UnaryExpression[Any]]:
        return [
            rows.c[name].desc() if descending else rows.c[name].asc()
            for name, (_, descending) in zip(names, keys, strict=True)
        ]

    page = sa.select(*matches.c).order_by(*ordering(matches)).limit(LIMIT).offset(OFFSET).subquery("page")
    total = sa.select(sa.func.count()).select_from(matches).scalar_subquery()
    return (
        sa.select(*columns, total.label("_total"))
        .select_from(sa.join(source, page, page.c.key == key))
        .order_by(*ordering(page))
    )


@dataclass(frozen=True, slots=True)
class ListSql:
    page: CompiledSql  # the page's rows and, in the last column, the total
    count: CompiledSql  # the total alone (asked for past the last page)


def like_pattern(text: str) -> str:
    """`%text%` for a `q` search (ILIKE), with LIKE's own wildcards escaped (`\\` is the escape character)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- a list -------------------------------------------------------------------------------------------


def model_columns(model: type[BaseModel], entity: Any) -> list[sa.ColumnElement[Any]]:
    """The columns of `entity` (a mapped class) named like `model`'s fields, in the model's order: rows
    that `json_bodies.dump_rows` writes as the model would. Only for a model that copies columns: one
    with validators, serializers or computed fields must stay on the model path (`page_response`)."""
    decorators = model.__pydantic_decorators__
    if any(
        (
            decorators.validators,
            decorators.field_validators,
            decorators.root_validators,
            decorators.field_serializers,
            decorators.model_serializers,
            decorators.model_validators,
            decorators.computed_fields,
        )
    ):
        raise AssertionError(f"{model.__name__} transforms its fields: its rows cannot skip it")
    columns = []
    for name, field in model.model_fields.items():
        if any(isinstance(item, _TRANSFORMS) for item in field.metadata):
            raise AssertionError(f"{model.__name__}.{name} is transformed: its rows cannot skip the model")
        attribute = field.validation_alias if isinstance(field.validation_alias, str) else name
        columns.append(getattr(entity, attribute).label(name))
    return columns


_TRANSFORMS = (
    functional_validators.AfterValidator,
    functional_validators.BeforeValidator,
    functional_validators.PlainValidator,
    functional_validators.WrapValidator,
    functional_serializers.PlainSerializer,
    functional_serializers.WrapSerializer,
)


Term = Callable[[], sa.ColumnElement[bool]]

# The WHERE terms lists share; each binds the parameter named like its term (`ListQuery`'s rule).
VALUES = postgresql.ARRAY(sa.String(20))


def equals(column: QueryableAttribute[Any], name: str) -> sa.ColumnElement[bool]:
    """`column = :name`, typed like the column (a NOT NULL column: `=` is `IS`)."""
    return column == sa.bindparam(name, type_=column.type)


def lower_equals(column: QueryableAttribute[Any], name: str) -> sa.ColumnElement[bool]:
    """`lower(column) = :name` (the caller lower-cases the value)."""
    return sa.func.lower(column) == sa.bindparam(name, type_=sa.String())


def any_of(column: QueryableAttribute[Any], name: str) -> sa.ColumnElement[bool]:
    """`column = ANY(:name)`, a list of values (a repeated filter)."""
    return column == sa.any_(sa.bindparam(name, type_=VALUES))


def search(expression: str, name: str = "q") -> sa.ColumnElement[bool]:
    """`expression ILIKE :name` (the value from `like_pattern`): the text a trigram index covers."""
    return sa.literal_column(expression).ilike(sa.bindparam(name, type_=sa.String()), escape="\\")


class ListQuery:
    """One list endpoint's statements: `columns` (labelled as the API names them, in the response
    model's order) of `source`, WHERE terms by name, sortable fields. Compiled once per shape.

    Each term is a function building its clause; a term with a value uses `sa.bindparam(<its name>)`
    (typed) for it. A request names the terms it uses with their values (`page_and_total(terms=...)`;
    None for a term without a parameter); `search` names the terms that make it a search
    (`search_page`). Values are never part of the SQL text, so the shapes are bounded by the terms'
    combinations and the sorts asked for (at most `size` kept, oldest out first)."""

    def __init__(
        self,
        *,
        columns: Sequence[Any],
        source: Any,
        key: Sortable,
        terms: Mapping[str, Term],
        sort: Mapping[str, Sortable],
        default: Sequence[Sortable],
        search: Iterable[str] = ("q",),
        size: int = 256,
    ) -> None:
        self.columns = tuple(columns)
        self.source = source
        self.key = key
        self.terms = dict(terms)
        self.sort = dict(sort)
        self.default = tuple(default)
        self.search = frozenset(search)
        self.size = size
        self._parameters = frozenset(self.terms) | {"limit", "offset"}
        self._compiled: dict[tuple[tuple[str, ...], str | None], ListSql] = {}

    def statements(self, terms: tuple[str, ...], sort: str | None, dialect: Dialect) -> ListSql:
        """The compiled page and count of a shape; an unknown sort field is a 422 (`order_by`), checked
        the first time a sort is seen."""
        shape = (terms, sort)
        cached = self._compiled.get(shape)
        if cached is not None:
            return cached
        order = order_by(sort, self.sort, default=self.default)
        clauses = [self.terms[name]() for name in terms]
        if self.search.intersection(terms):
            page = search_page(self.columns, self.source, self.key, clauses, order)
        else:
            page = plain_page(self.columns, self.source, clauses, order)
        count = sa.select(sa.func.count()).select_from(self.source).where(*clauses)
        compiled = ListSql(
            page=CompiledSql.of(page, dialect, self._parameters), count=CompiledSql.of(count, dialect, self._parameters)
        )
        if len(self._compiled) >= self.size:
            self._compiled.pop(next(iter(self._compiled)))
        self._compiled[shape] = compiled
        return compiled

    async def page_and_total(
        self,
        connection: AsyncConnection,
        *,
        terms: Mapping[str, Any],
        sort: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page (rows as dicts of `columns`) and the total, in one round trip."""
        shape = tuple(name for name in self.terms if name in terms)
        if len(shape) != len(terms):
            raise AssertionError(f"unknown list terms: {sorted(set(terms) - set(shape))}")
        sql = self.statements(shape, sort, connection.dialect)
        records = await fetch(connection, sql.page, {**terms, "limit": limit, "offset": offset})
        if records:
            names = list(records[0].keys())[:-1]  # the last column is the total
            return [dict(zip(names, record, strict=False)) for record in records], int(records[0][-1])
        if offset == 0:
            return [], 0
        return [], int((await fetch(connection, sql.count, terms))[0][0])
