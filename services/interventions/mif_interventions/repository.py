"""Queries of the interventions service."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mif_common.datetimes import now
from mif_common.listing import VALUES, ListSql, equals, plain_page, search_page
from mif_common.replicas import upsert_if_newer
from mif_common.statements import CompiledSql, fetch
from mif_interventions.lateness import late_clause
from mif_interventions.models import (
    Commentaire,
    EquipementRef,
    Historique,
    IdempotencyKey,
    Intervention,
    TechnicienRef,
    UserRef,
)

# --- visibility and filters ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visibilite:
    """Which interventions a caller may see: all (managers), one organisation's (a client user), those
    assigned to one technician, or none (a technician without a profile in the replica)."""

    client_id: int | None = None
    technicien_id: int | None = None
    rien: bool = False

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        if self.rien:
            return [sa.false()]
        out: list[sa.ColumnElement[bool]] = []
        if self.client_id is not None:
            out.append(Intervention.client_id == self.client_id)
        if self.technicien_id is not None:
            out.append(Intervention.technicien_id == self.technicien_id)
        return out

    def allows(self, intervention: Intervention) -> bool:
        if self.rien:
            return False
        if self.client_id is not None and intervention.client_id != self.client_id:
            return False
        return self.technicien_id is None or intervention.technicien_id == self.technicien_id


@dataclass(frozen=True, slots=True)
class Filtres:
    statut: Sequence[str] = ()
    priorite: Sequence[str] = ()
    type: Sequence[str] = ()
    urgence: bool | None = None
    technicien_id: int | None = None
    equipement_id: int | None = None
    client_id: int | None = None
    planning_id: int | None = None
    en_retard: bool | None = None
    date_creation_min: datetime | None = None
    date_creation_max: datetime | None = None
    date_limite_min: datetime | None = None
    date_limite_max: datetime | None = None
    q: str | None = None
    now: datetime | None = field(default=None, compare=False)


_WORD = re.compile(r"\w+", re.UNICODE)


def tsquery_text(q: str) -> str | None:
    """`q` as a to_tsquery() string: every word must match, each as a prefix (`compres` finds
    `compresseur`). Only word characters pass, so nothing in `q` is tsquery syntax."""
    words = _WORD.findall(q)[:12]
    return " & ".join(f"{w}:*" for w in words) if words else None


# Bookkeeping columns the API does not show.
_INTERNAL_COLUMNS = frozenset(
    {"search_vector", "late_notified_at", "occurrence_key", "created_by_role", "date_limite_sla", "cout_pieces_version"}
)
# What a list row and a single read show: the intervention plus the replicas' names. The names are
# looked up by primary key in scalar subqueries rather than outer joins: the same rows, but a
# single-table statement, which PostgreSQL plans in about half the time (it plans each list request).
LIST_COLUMNS: tuple[Any, ...] = (
    *(c for c in Intervention.__table__.c if c.name not in _INTERNAL_COLUMNS),
    sa.select(TechnicienRef.full_name)
    .where(TechnicienRef.technicien_id == Intervention.technicien_id)
    .scalar_subquery()
    .label("technicien_full_name"),
    sa.select(EquipementRef.nom)
    .where(EquipementRef.id == Intervention.equipement_id)
    .scalar_subquery()
    .label("equipement_nom"),
)

# Built once (coercing ~40 columns per request costs): single reads add their WHERE.
LIST_SELECT = sa.select(*LIST_COLUMNS).select_from(Intervention)


# --- the list: one statement per request, compiled once per shape --------------------------------
#
# A list request runs one statement (the page and its total) straight on the asyncpg connection. The
# statement is built by SQLAlchemy as usual, but only once per *shape* (which WHERE terms, which sort):
# every value is a named parameter, so the SQL text of a shape never changes and is kept compiled.
# Building a select of ~40 columns and letting SQLAlchemy find it in its compiled cache costs ~1.5 ms
# of CPU per request, executing it through the ORM layer another ~0.6 ms; a dict look-up and
# asyncpg's own prepared statement cost neither.

_NOW = sa.bindparam("now", type_=sa.DateTime(timezone=True))
_LATE = late_clause(_NOW)


# Every WHERE term a list may need, by name; each term's parameter, if it has one, has its name.
_TERMS: dict[str, Callable[[], sa.ColumnElement[bool]]] = {
    "rien": sa.false,
    "scope_client_id": lambda: equals(Intervention.client_id, "scope_client_id"),
    "scope_technicien_id": lambda: equals(Intervention.technicien_id, "scope_technicien_id"),
    # One value is an equality (what `IN (x)` becomes): the planner then knows that an index on
    # (statut, priorite, date_creation) returns rows in date_creation order. Several are `= ANY`.
    "statut": lambda: equals(Intervention.statut, "statut"),
    "statut_in": lambda: Intervention.statut == sa.any_(sa.bindparam("statut_in", type_=VALUES)),
    "priorite": lambda: equals(Intervention.priorite, "priorite"),
    "priorite_in": lambda: Intervention.priorite == sa.any_(sa.bindparam("priorite_in", type_=VALUES)),
    "type": lambda: equals(Intervention.type, "type"),
    "type_in": lambda: Intervention.type == sa.any_(sa.bindparam("type_in", type_=VALUES)),
    "urgence": lambda: equals(Intervention.urgence, "urgence"),  # NOT NULL: `=` is `IS`
    "technicien_id": lambda: equals(Intervention.technicien_id, "technicien_id"),
    "equipement_id": lambda: equals(Intervention.equipement_id, "equipement_id"),
    "client_id": lambda: equals(Intervention.client_id, "client_id"),
    "planning_id": lambda: equals(Intervention.planning_id, "planning_id"),
    "en_retard": lambda: _LATE,
    "a_l_heure": lambda: sa.not_(sa.func.coalesce(_LATE, sa.false())),
    "date_creation_min": lambda: Intervention.date_creation >= sa.bindparam("date_creation_min", type_=_NOW.type),
    "date_creation_max": lambda: Intervention.date_creation <= sa.bindparam("date_creation_max", type_=_NOW.type),
    "date_limite_min": lambda: Intervention.date_limite >= sa.bindparam("date_limite_min", type_=_NOW.type),
    "date_limite_max": lambda: Intervention.date_limite <= sa.bindparam("date_limite_max", type_=_NOW.type),
    "q": lambda: Intervention.search_vector.op("@@")(
        sa.func.to_tsquery(sa.literal_column("'french'"), sa.bindparam("q", type_=sa.String()))
    ),
}


def list_terms(filtres: Filtres, visibilite: Visibilite) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The WHERE terms (names in `_TERMS`) that a caller's visibility and filters call for, and the
    values of their parameters. Filters narrow the caller's visibility, never widen it."""
    if visibilite.rien:
        return ("rien",), {}
    terms: list[str] = []
    values: dict[str, Any] = {}

    def term(name: str, value: Any = None) -> None:
        terms.append(name)
        if value is not None:
            values[name] = value

    f = filtres
    if visibilite.client_id is not None:
        term("scope_client_id", visibilite.client_id)
    if visibilite.technicien_id is not None:
        term("scope_technicien_id", visibilite.technicien_id)
    for name, many in (("statut", f.statut), ("priorite", f.priorite), ("type", f.type)):
        if len(many) == 1:
            term(name, many[0])
        elif many:
            term(f"{name}_in", list(many))
    for name, one in (
        ("urgence", f.urgence),
        ("technicien_id", f.technicien_id),
        ("equipement_id", f.equipement_id),
        ("client_id", f.client_id),
        ("planning_id", f.planning_id),
    ):
        if one is not None:
            term(name, one)
    if f.en_retard is not None:
        term("en_retard" if f.en_retard else "a_l_heure")
        values["now"] = f.now or now()
    for name, moment in (
        ("date_creation_min", f.date_creation_min),
        ("date_creation_max", f.date_creation_max),
        ("date_limite_min", f.date_limite_min),
        ("date_limite_max", f.date_limite_max),
    ):
        if moment is not None:
            term(name, moment)
    if f.q is not None:
        query = tsquery_text(f.q)
        if query is None:
            term("rien")  # nothing searchable in `q`: nothing matches
        else:
            term("q", query)
    return tuple(terms), values


def term_clauses(terms: Sequence[str]) -> list[sa.ColumnElement[bool]]:
    return [_TERMS[name]() for name in terms]


_PARAMETERS = frozenset(_TERMS) | {"now", "limit", "offset"}
_LIST_SQL: dict[tuple[tuple[str, ...], str | None], ListSql] = {}
_LIST_SQL_SIZE = 512  # shapes kept (the sort is the caller's text: bounded, oldest out first)


def list_sql(terms: tuple[str, ...], sort: str | None, order: Callable[[], Sequence[Any]], dialect: Dialect) -> ListSql:
    """The compiled page and count statements of a shape. `order()` gives the ORDER BY clauses (and
    raises for an unknown sort field): it is called only the first time a sort is seen. A search (`q`)
    finds its matches through the full-text index first, whatever the sort (`listing.search_page`)."""
    key = (terms, sort)
    cached = _LIST_SQL.get(key)
    if cached is not None:
        return cached
    clauses = term_clauses(terms)
    if "q" in terms:
        page = search_page(LIST_COLUMNS, Intervention, Intervention.id, clauses, order())
    else:
        page = plain_page(LIST_COLUMNS, Intervention, clauses, order())
    total = sa.select(sa.func.count()).select_from(Intervention).where(*clauses)
    compiled = ListSql(
        page=CompiledSql.of(page, dialect, _PARAMETERS), count=CompiledSql.of(total, dialect, _PARAMETERS)
    )
    if len(_LIST_SQL) >= _LIST_SQL_SIZE:
        _LIST_SQL.pop(next(iter(_LIST_SQL)))
    _LIST_SQL[key] = compiled
    return compiled


async def page_and_total(
    connection: AsyncConnection,
    filtres: Filtres,
    visibilite: Visibilite,
    *,
    sort: str | None,
    order: Callable[[], Sequence[Any]],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page (rows as `LIST_COLUMNS` dicts) and the total, in one round trip: the count rides along
    as an uncorrelated scalar subquery (evaluated once). Past the last page, the total is counted on
    its own. Runs on the asyncpg connection itself (see above)."""
    terms, values = list_terms(filtres, visibilite)
    sql = list_sql(terms, sort, order, connection.dialect)
    records = await fetch(connection, sql.page, {**values, "limit": limit, "offset": offset})
    if records:
        keys = list(records[0].keys())[:-1]  # the last column is the total
        return [dict(zip(keys, r, strict=False)) for r in records], int(records[0][-1])
    if offset == 0:
        return [], 0
    return [], int((await fetch(connection, sql.count, values))[0][0])


async def row_of(session: AsyncSession, intervention_id: int) -> dict[str, Any] | None:
    query = LIST_SELECT.where(Intervention.id == intervention_id)
    row = (await session.execute(query)).mappings().one_or_none()
    return dict(row) if row is not None else None


async def insert_for_occurrence(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert an occurrence's intervention; None (nothing inserted) when its `occurrence_key` is known."""
    return await session.scalar(
        pg_insert(Intervention)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[Intervention.occurrence_key], index_where=Intervention.occurrence_key.is_not(None)
        )
        .returning(Intervention.id)
    )


async def intervention_by_id(
    session: AsyncSession, intervention_id: int, *, for_update: bool = False
) -> Intervention | None:
    query = sa.select(Intervention).where(Intervention.id == intervention_id)
    if for_update:
        # A locked read always sees the committed row, never a stale object of the identity map.
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


# --- history and comments -----------------------------------------------------------------------


def historique_query(intervention_id: int) -> sa.Select[Any]:
    return sa.select(Historique).where(Historique.intervention_id == intervention_id)


def commentaires_query(intervention_id: int) -> sa.Select[Any]:
    return sa.select(Commentaire).where(Commentaire.intervention_id == intervention_id)


# --- idempotency --------------------------------------------------------------------------------


async def claim_idempotency_key(session: AsyncSession, *, user_id: int, key: str, request_sha256: str) -> bool:
    """Record the key; False when it already exists. A concurrent claim of the same key waits for this
    transaction (the unique index), then sees its outcome."""
    claimed = await session.scalar(
        pg_insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_sha256=request_sha256)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    )
    return claimed is not None


async def idempotency_key(session: AsyncSession, *, user_id: int, key: str) -> IdempotencyKey | None:
    return await session.get(IdempotencyKey, (user_id, key), populate_existing=True)


async def set_idempotency_result(session: AsyncSession, *, user_id: int, key: str, intervention_id: int) -> None:
    await session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(intervention_id=intervention_id)
    )


async def purge_idempotency_keys(session: AsyncSession, *, older_than: datetime) -> int:
    result = await session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < older_than))
    return int(getattr(result, "rowcount", 0) or 0)


# --- lateness -----------------------------------------------------------------------------------


async def claim_late(session: AsyncSession, *, now: datetime, limit: int) -> Sequence[Intervention]:
    """Open interventions past their deadline not yet announced late, locked; rows another replica
    holds are skipped (it is announcing them)."""
    query = (
        sa.select(Intervention)
        .where(late_clause(now), Intervention.late_notified_at.is_(None))
        .order_by(Intervention.date_limite)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).all()


# --- replicas -----------------------------------------------------------------------------------


async def equipement_ref(session: AsyncSession, equipement_id: int) -> EquipementRef | None:
    return await session.get(EquipementRef, equipement_id, populate_existing=True)


async def upsert_equipement_ref(
    session: AsyncSession,
    *,
    id: int,
    nom: str,
    client_id: int | None,
    statut: str,
    version: int,
    updated_at: datetime,
) -> bool:
    """Insert or update unless the replica holds a later version; False when stale."""
    values = {
        "id": id,
        "nom": nom,
        "client_id": client_id,
        "statut": statut,
        "version": version,
        "updated_at": updated_at,
    }
    return await upsert_if_newer(
        session, EquipementRef, key=EquipementRef.id, freshness=EquipementRef.version, values=values
    )


async def delete_equipement_ref(session: AsyncSession, *, equipement_id: int, version: int) -> None:
    await session.execute(
        sa.delete(EquipementRef).where(EquipementRef.id == equipement_id, EquipementRef.version <= version)
    )


async def fill_client_of_equipement(session: AsyncSession, *, equipement_id: int, client_id: int | None) -> None:
    """Interventions created before their equipment was known (plan occurrences) get its organisation."""
    if client_id is None:
        return
    await session.execute(
        sa.update(Intervention)
        .where(Intervention.equipement_id == equipement_id, Intervention.client_id.is_(None))
        .values(client_id=client_id)
    )


async def technicien_ref(session: AsyncSession, technicien_id: int) -> TechnicienRef | None:
    return await session.get(TechnicienRef, technicien_id, populate_existing=True)


async def technicien_of_user(session: AsyncSession | AsyncConnection, user_id: int) -> int | None:
    return await session.scalar(
        sa.select(TechnicienRef.technicien_id)
        .where(TechnicienRef.user_id == user_id)
        .order_by(TechnicienRef.is_active.desc(), TechnicienRef.technicien_id)
        .limit(1)
    )


async def upsert_technicien_ref(session: AsyncSession, **values: Any) -> bool:
    return await upsert_if_newer(
        session, TechnicienRef, key=TechnicienRef.technicien_id, freshness=TechnicienRef.version, values=values
    )


async def upsert_user_ref(session: AsyncSession, **values: Any) -> bool:
    return await upsert_if_newer(session, UserRef, key=UserRef.user_id, freshness=UserRef.event_time, values=values)
