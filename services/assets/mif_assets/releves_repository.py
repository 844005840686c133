"""Statements of the readings: fixed SQL run as asyncpg prepared statements on the session's (or a read)
connection, inside its transaction (`mif_common.statements`). A batch of 1,000 readings is one INSERT
from arrays (`unnest`), with its hourly and daily rollups upserted by the same statement: building ORM
objects per reading would cost more CPU than PostgreSQL spends storing them.

Table names are unqualified: the connection's `search_path` is the service's schema (`mif_common.db`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mif_common.statements import CompiledSql, fetch


def _sql(text: str, *names: str) -> CompiledSql:
    return CompiledSql(text=text, names=names, constants={})


@dataclass(frozen=True, slots=True)
class CompteurRef:
    """What ingestion and history need of a meter (and of its equipment, for row-level rules)."""

    id: int
    equipement_id: int
    code: str
    nature: str
    unite: str
    client_id: int | None = None


# Locked until the transaction ends: the batches of one meter are checked and stored one after the other
# (the counter rule reads the stored neighbours). NO KEY: the readings' foreign keys do not wait on it.
_LOCK_BY_ID = _sql(
    "SELECT c.id, c.equipement_id, c.code, c.nature, c.unite FROM compteur c"
    " WHERE c.id = $1 AND c.equipement_id = $2 FOR NO KEY UPDATE",
    "compteur_id",
    "equipement_id",
)
_LOCK_BY_CODE = _sql(
    "SELECT c.id, c.equipement_id, c.code, c.nature, c.unite FROM compteur c"
    " WHERE c.equipement_id = $1 AND c.code = $2 FOR NO KEY UPDATE",
    "equipement_id",
    "code",
)
_READ = _sql(
    "SELECT c.id, c.equipement_id, c.code, c.nature, c.unite, e.client_id FROM compteur c"
    " JOIN equipement e ON e.id = c.equipement_id"
    " WHERE c.id = $1 AND c.equipement_id = $2",
    "compteur_id",
    "equipement_id",
)

# The stored readings a batch of a counter is checked against: those within its time span, and the one
# on either side of it.
_NEIGHBOURS = _sql(
    "(SELECT horodatage, valeur, remise_a_zero FROM releve WHERE compteur_id = $1 AND horodatage < $2"
    " ORDER BY horodatage DESC LIMIT 1)"
    " UNION ALL (SELECT horodatage, valeur, remise_a_zero FROM releve"
    " WHERE compteur_id = $1 AND horodatage >= $2 AND horodatage <= $3)"
    " UNION ALL (SELECT horodatage, valeur, remise_a_zero FROM releve WHERE compteur_id = $1 AND horodatage > $3"
    " ORDER BY horodatage LIMIT 1)",
    "compteur_id",
    "premier",
    "dernier",
)


@dataclass(frozen=True, slots=True)
class _Rollup:
    """A rollup table of the readings (min, max, sum and count per meter and aligned period of `step`) and
    its statements."""

    step: timedelta
    upsert: str  # a CTE folding the batch's new readings (`nouveaux`) into it
    rows: CompiledSql  # its rows as they are: buckets of `step`
    buckets: CompiledSql  # buckets of a multiple of `step`


def _rollup(table: str, column: str, unit: str, step: timedelta) -> _Rollup:
    """`column` is the period's start, `date_trunc(unit, ..., 'UTC')` of the readings it holds."""
    c = column
    upsert = (
        f"add_{table} AS (INSERT INTO {table} AS r (compteur_id, {c}, min, max, somme, nombre)"  # noqa: S608 - fixed names
        f" SELECT $1::bigint, date_trunc('{unit}', horodatage, 'UTC') AS {c}, min(valeur), max(valeur),"
        f" sum(valeur), count(*) FROM nouveaux GROUP BY {c}"
        f" ON CONFLICT (compteur_id, {c}) DO UPDATE SET min = least(r.min, excluded.min),"
        " max = greatest(r.max, excluded.max), somme = r.somme + excluded.somme,"
        " nombre = r.nombre + excluded.nombre)"
    )
    rows = _sql(
        f"SELECT {c} AS debut, min, somme / nombre AS moy, max, nombre::bigint AS nombre FROM {table}"  # noqa: S608 - fixed names
        f" WHERE compteur_id = $1 AND {c} >= $2 AND {c} < $3 ORDER BY {c}",
        "compteur_id",
        "depuis",
        "jusqu_a",
    )
    buckets = _sql(
        f"SELECT date_bin($2::interval, {c}, $3::timestamptz) AS debut, min(min) AS min,"  # noqa: S608 - fixed names
        " sum(somme) / sum(nombre) AS moy, max(max) AS max, sum(nombre)::bigint AS nombre"
        f" FROM {table} WHERE compteur_id = $1 AND {c} >= $4 AND {c} < $5 GROUP BY 1 ORDER BY 1",
        "compteur_id",
        "pas",
        "origine",
        "depuis",
        "jusqu_a",
    )
    return _Rollup(step, upsert, rows, buckets)


# Coarsest first: a step is answered from the first rollup whose period divides it.
_ROLLUPS = (
    _rollup("releve_jour", "jour", "day", timedelta(days=1)),
    _rollup("releve_horaire", "heure", "hour", timedelta(hours=1)),
)

# The new readings (a reading already stored for its instant is left alone), and the hourly and daily
# rollups of exactly those, in one statement.
_INSERT = _sql(
    "WITH nouveaux AS ("  # noqa: S608 - fixed names
    " INSERT INTO releve (compteur_id, horodatage, valeur, source, remise_a_zero)"
    " SELECT $1::bigint, t.h, t.v, $2::varchar, t.r"
    " FROM unnest($3::timestamptz[], $4::float8[], $5::bool[]) AS t(h, v, r)"
    " ON CONFLICT DO NOTHING RETURNING horodatage, valeur, remise_a_zero"
    f"), {', '.join(rollup.upsert for rollup in _ROLLUPS)}"
    " SELECT horodatage, valeur, remise_a_zero FROM nouveaux ORDER BY horodatage",
    "compteur_id",
    "source",
    "horodatages",
    "valeurs",
    "remises",
)

_RAW_PAGE = _sql(
    "SELECT horodatage, valeur, source, remise_a_zero FROM releve"
    " WHERE compteur_id = $1 AND horodatage >= $2 AND horodatage < $3 ORDER BY horodatage LIMIT $4 OFFSET $5",
    "compteur_id",
    "depuis",
    "jusqu_a",
    "limit",
    "offset",
)
_RAW_COUNT = _sql(
    "SELECT count(*) AS total FROM releve WHERE compteur_id = $1 AND horodatage >= $2 AND horodatage < $3",
    "compteur_id",
    "depuis",
    "jusqu_a",
)
# How many readings a range holds, from the rollups (whole hours covering it).
_ROLLUP_COUNT = _sql(
    "SELECT coalesce(sum(nombre), 0)::bigint AS total FROM releve_horaire"
    " WHERE compteur_id = $1 AND heure >= date_trunc('hour', $2::timestamptz, 'UTC') AND heure < $3",
    "compteur_id",
    "depuis",
    "jusqu_a",
)
_BUCKETS_RAW = _sql(
    "SELECT date_bin($2::interval, horodatage, $3::timestamptz) AS debut, min(valeur) AS min,"
    " avg(valeur) AS moy, max(valeur) AS max, count(*) AS nombre FROM releve"
    " WHERE compteur_id = $1 AND horodatage >= $4 AND horodatage < $5 GROUP BY 1 ORDER BY 1",
    "compteur_id",
    "pas",
    "origine",
    "depuis",
    "jusqu_a",
)


def _ref(row: asyncpg.Record | None) -> CompteurRef | None:
    return CompteurRef(**dict(row)) if row is not None else None


async def _run(session: AsyncSession, sql: CompiledSql, values: Mapping[str, Any]) -> list[asyncpg.Record]:
    return await fetch(await session.connection(), sql, values)


async def lock_compteur(session: AsyncSession, *, equipement_id: int, compteur_id: int) -> CompteurRef | None:
    rows = await _run(session, _LOCK_BY_ID, {"compteur_id": compteur_id, "equipement_id": equipement_id})
    return _ref(rows[0] if rows else None)


async def lock_compteur_by_code(session: AsyncSession, *, equipement_id: int, code: str) -> CompteurRef | None:
    rows = await _run(session, _LOCK_BY_CODE, {"equipement_id": equipement_id, "code": code})
    return _ref(rows[0] if rows else None)


async def read_compteur(connection: AsyncConnection, *, equipement_id: int, compteur_id: int) -> CompteurRef | None:
    rows = await fetch(connection, _READ, {"compteur_id": compteur_id, "equipement_id": equipement_id})
    return _ref(rows[0] if rows else None)


async def neighbours(
    session: AsyncSession, *, compteur_id: int, premier: datetime, dernier: datetime
) -> list[asyncpg.Record]:
    return await _run(session, _NEIGHBOURS, {"compteur_id": compteur_id, "premier": premier, "dernier": dernier})


async def insert_releves(
    session: AsyncSession,
    *,
    compteur_id: int,
    source: str,
    horodatages: Sequence[datetime],
    valeurs: Sequence[float],
    remises: Sequence[bool],
) -> list[asyncpg.Record]:
    """Store the readings whose instant is new for the meter and fold them into the hourly and daily rollups;
    the stored ones, oldest first."""
    return await _run(
        session,
        _INSERT,
        {
            "compteur_id": compteur_id,
            "source": source,
            "horodatages": horodatages,
            "valeurs": valeurs,
            "remises": remises,
        },
    )


async def raw_page(
    connection: AsyncConnection, *, compteur_id: int, depuis: datetime, jusqu_a: datetime, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    window = {"compteur_id": compteur_id, "depuis": depuis, "jusqu_a": jusqu_a}
    rows = await fetch(connection, _RAW_PAGE, window | {"limit": limit, "offset": offset})
    [total] = await fetch(connection, _RAW_COUNT, window)
    return rows, int(total["total"])


async def count_in_range(connection: AsyncConnection, *, compteur_id: int, depuis: datetime, jusqu_a: datetime) -> int:
    [row] = await fetch(connection, _ROLLUP_COUNT, {"compteur_id": compteur_id, "depuis": depuis, "jusqu_a": jusqu_a})
    return int(row["total"])


async def buckets(
    connection: AsyncConnection,
    *,
    compteur_id: int,
    pas: timedelta,
    origine: datetime,
    depuis: datetime,
    jusqu_a: datetime,
    from_rollups: bool,
) -> list[asyncpg.Record]:
    """Buckets of `pas` from the coarsest rows that add up to them: the daily rollups for whole days (the
    buckets are aligned on UTC midnights, `origine` being one), the hourly ones for whole hours, else the
    readings."""
    window = {"compteur_id": compteur_id, "depuis": depuis, "jusqu_a": jusqu_a}
    binned = {"pas": pas, "origine": origine}
    if not from_rollups:
        return await fetch(connection, _BUCKETS_RAW, window | binned)
    rollup = next(r for r in _ROLLUPS if pas % r.step == timedelta(0))
    if pas == rollup.step:
        return await fetch(connection, rollup.rows, window)
    return await fetch(connection, rollup.buckets, window | binned)
