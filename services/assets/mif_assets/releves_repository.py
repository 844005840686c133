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

# The new readings (a reading already stored for its instant is left alone), and the hourly and daily
# rollups of exactly those, in one statement.
_INSERT = _sql(
    "WITH nouveaux AS ("
    " INSERT INTO releve (compteur_id, horodatage, valeur, source, remise_a_zero)"
    " SELECT $1::bigint, t.h, t.v, $2::varchar, t.r"
    " FROM unnest($3::timestamptz[], $4::float8[], $5::bool[]) AS t(h, v, r)"
    " ON CONFLICT DO NOTHING RETURNING horodatage, valeur, remise_a_zero"
    "), rollup AS ("
    " INSERT INTO releve_horaire AS rh (compteur_id, heure, min, max, somme, nombre)"
    " SELECT $1::bigint, date_trunc('hour', horodatage, 'UTC') AS heure, min(valeur), max(valeur), sum(valeur),"
    " count(*) FROM nouveaux GROUP BY heure"
    " ON CONFLICT (compteur_id, heure) DO UPDATE SET min = least(rh.min, excluded.min),"
    " max = greatest(rh.max, excluded.max), somme = rh.somme + excluded.somme, nombre = rh.nombre + excluded.nombre"
    "), rollup_jour AS ("
    " INSERT INTO releve_jour AS rj (compteur_id, jour, min, max, somme, nombre)"
    " SELECT $1::bigint, date_trunc('day', horodatage, 'UTC') AS jour, min(valeur), max(valeur), sum(valeur),"
    " count(*) FROM nouveaux GROUP BY jour"
    " ON CONFLICT (compteur_id, jour) DO UPDATE SET min = least(rj.min, excluded.min),"
    " max = greatest(rj.max, excluded.max), somme = rj.somme + excluded.somme, nombre = rj.nombre + excluded.nombre"
    ") SELECT horodatage, valeur, remise_a_zero FROM nouveaux ORDER BY horodatage",
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
# A step of one hour, or of one day, is the rollups as they are.
_HOURS = _sql(
    "SELECT heure AS debut, min, somme / nombre AS moy, max, nombre::bigint AS nombre FROM releve_horaire"
    " WHERE compteur_id = $1 AND heure >= $2 AND heure < $3 ORDER BY heure",
    "compteur_id",
    "depuis",
    "jusqu_a",
)
_DAYS = _sql(
    "SELECT jour AS debut, min, somme / nombre AS moy, max, nombre::bigint AS nombre FROM releve_jour"
    " WHERE compteur_id = $1 AND jour >= $2 AND jour < $3 ORDER BY jour",
    "compteur_id",
    "depuis",
    "jusqu_a",
)
_BUCKETS_HOURS = _sql(
    "SELECT date_bin($2::interval, heure, $3::timestamptz) AS debut, min(min) AS min,"
    " sum(somme) / sum(nombre) AS moy, max(max) AS max, sum(nombre)::bigint AS nombre FROM releve_horaire"
    " WHERE compteur_id = $1 AND heure >= $4 AND heure < $5 GROUP BY 1 ORDER BY 1",
    "compteur_id",
    "pas",
    "origine",
    "depuis",
    "jusqu_a",
)
_BUCKETS_DAYS = _sql(
    "SELECT date_bin($2::interval, jour, $3::timestamptz) AS debut, min(min) AS min,"
    " sum(somme) / sum(nombre) AS moy, max(max) AS max, sum(nombre)::bigint AS nombre FROM releve_jour"
    " WHERE compteur_id = $1 AND jour >= $4 AND jour < $5 GROUP BY 1 ORDER BY 1",
    "compteur_id",
    "pas",
    "origine",
    "depuis",
    "jusqu_a",
)


_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)


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
    if from_rollups and pas in (_HOUR, _DAY):
        return await fetch(connection, _HOURS if pas == _HOUR else _DAYS, window)
    rollups = _BUCKETS_DAYS if pas % _DAY == timedelta(0) else _BUCKETS_HOURS
    sql = rollups if from_rollups else _BUCKETS_RAW
    return await fetch(connection, sql, window | {"pas": pas, "origine": origine})
