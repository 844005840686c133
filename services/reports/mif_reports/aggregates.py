"""The KPI sums per day (every dimension; type and priority only), per month (one axis at a time), per
day and month along one axis with type and priority summed away, and per month along a pair of axes,
kept incrementally.

An intervention's *contribution* is a pure function of its current state: +1 `creees` on its creation day,
+1 `sorties` on the day it left the backlog, its closure figures on its closure day, and for a preventive
+1 `preventives_dues` on its deadline day. When a fact changes the state, the difference between the old
contribution and the new one is added to the sums (one upsert per table, run for each changed day or
month). So a
duplicate or an older event (ignored before it gets here) changes nothing, and events in any order end in
the same sums: the sums only ever depend on the latest state of each intervention.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.statements import CompiledSql, fetch
from mif_reports.models import (
    AXES_MOIS,
    METRIQUES,
    PAIRES_MOIS,
    InterventionFait,
    agregat_jour,
    agregat_jour_global,
    agregat_mois,
    agregat_paire_mois,
    agregat_total_jour,
    agregat_total_mois,
)

# (jour, client_id, equipement_id, technicien_id, type, priorite, type_equipement); ids are 0 and the
# equipment type '' when absent.
Key = tuple[date, int, int, int, str, str, str]
Contribution = dict[Key, Counter[str]]


@dataclass(frozen=True, slots=True)
class Etat:
    """What of an intervention counts in the sums."""

    client_id: int | None
    equipement_id: int | None
    type_equipement: str | None
    technicien_id: int | None
    type: str | None
    priorite: str | None
    statut: str | None
    date_creation: datetime | None
    date_limite: datetime | None
    date_debut: datetime | None
    date_cloture: datetime | None
    date_fin: datetime | None
    duree_reelle: int | None
    cout_pieces: int
    refaite: bool

    @classmethod
    def of(cls, fait: InterventionFait) -> Etat:
        return cls(
            client_id=fait.client_id,
            equipement_id=fait.equipement_id,
            type_equipement=fait.type_equipement,
            technicien_id=fait.technicien_id,
            type=fait.type,
            priorite=fait.priorite,
            statut=fait.statut,
            date_creation=fait.date_creation,
            date_limite=fait.date_limite,
            date_debut=fait.date_debut,
            date_cloture=fait.date_cloture,
            date_fin=fait.date_fin,
            duree_reelle=fait.duree_reelle,
            cout_pieces=fait.cout_pieces or 0,
            refaite=bool(fait.refaite),
        )


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds()))


def contribution(etat: Etat | None, fuseau: ZoneInfo) -> Contribution:
    """The sums this state adds, per day key (empty until the snapshot has its creation date)."""
    out: Contribution = defaultdict(Counter)
    if etat is None or etat.date_creation is None or etat.type is None or etat.priorite is None:
        return out
    dims = (
        etat.client_id or 0,
        etat.equipement_id or 0,
        etat.technicien_id or 0,
        etat.type,
        etat.priorite,
        etat.type_equipement or "",
    )

    def day(moment: datetime) -> Counter[str]:
        return out[(moment.astimezone(fuseau).date(), *dims)]

    day(etat.date_creation)["creees"] += 1
    if etat.date_fin is not None:
        day(etat.date_fin)["sorties"] += 1
    if etat.date_cloture is not None:
        closed = day(etat.date_cloture)
        closed["cloturees"] += 1
        if etat.date_debut is not None:
            closed["demarrees"] += 1
            closed["secondes_travaux"] += _seconds(etat.date_debut, etat.date_cloture)
        closed["secondes_resolution"] += _seconds(etat.date_creation, etat.date_cloture)
        closed["minutes_travaillees"] += etat.duree_reelle or 0
        closed["cout_pieces"] += etat.cout_pieces
        if etat.date_limite is not None:
            closed["sla_evaluees"] += 1
            closed["sla_respectees"] += etat.date_cloture <= etat.date_limite
        if etat.type == "corrective":
            closed["correctives_cloturees"] += 1
            closed["correctives_refaites"] += etat.refaite
    cancelled = etat.statut == "annulee" or (etat.statut == "archivee" and etat.date_cloture is None)
    if etat.type == "preventive" and etat.date_limite is not None and not cancelled:
        due = day(etat.date_limite)
        due["preventives_dues"] += 1
        due["preventives_a_temps"] += etat.date_cloture is not None and etat.date_cloture <= etat.date_limite
    return out


def difference(old: Contribution, new: Contribution) -> dict[Key, dict[str, int]]:
    """new − old per key, keys whose every metric nets to zero left out."""
    deltas: dict[Key, dict[str, int]] = {}
    for key in old.keys() | new.keys():
        delta = {m: new.get(key, Counter())[m] - old.get(key, Counter())[m] for m in METRIQUES}
        if any(delta.values()):
            deltas[key] = delta
    return deltas


# Where each monthly axis reads its value in a Key.
_AXIS_INDEX = {"tout": None, "client": 1, "technicien": 3, "type_equipement": 6}
assert _AXIS_INDEX.keys() == AXES_MOIS.keys()
# Each pair of axes of the pair sums, with where its two values are in a Key.
_PAIR_INDEXES: tuple[tuple[str, int, str, int], ...] = tuple(
    (axe, index, par, par_index)
    for axe, par in PAIRES_MOIS
    if (index := _AXIS_INDEX[axe]) is not None and (par_index := _AXIS_INDEX[par]) is not None
)
assert len(_PAIR_INDEXES) == len(PAIRES_MOIS)


def _axis_value(key: Key, index: int | None) -> str:
    return "" if index is None else str(key[index])


RowsOf = Callable[[Key], Iterable[tuple[Any, ...]]]
# Every table the deltas go to: the columns its rows are summed by (its primary key), and the rows of it
# a delta of one Key adds to.
_TABLES: tuple[tuple[sa.Table, tuple[str, ...], RowsOf], ...] = (
    (
        agregat_jour,
        ("jour", "client_id", "equipement_id", "technicien_id", "type", "priorite"),
        lambda key: (key[:6],),
    ),
    (agregat_jour_global, ("jour", "type", "priorite"), lambda key: ((key[0], key[4], key[5]),)),
    (
        agregat_mois,
        ("axe", "valeur", "mois", "type", "priorite"),
        lambda key: [
            (axe, _axis_value(key, index), key[0].replace(day=1), key[4], key[5]) for axe, index in _AXIS_INDEX.items()
        ],
    ),
    (
        agregat_total_jour,
        ("axe", "valeur", "jour"),
        lambda key: [(axe, _axis_value(key, index), key[0]) for axe, index in _AXIS_INDEX.items()],
    ),
    (
        agregat_total_mois,
        ("axe", "valeur", "mois"),
        lambda key: [(axe, _axis_value(key, index), key[0].replace(day=1)) for axe, index in _AXIS_INDEX.items()],
    ),
    (
        agregat_paire_mois,
        ("axe", "valeur", "par", "mois", "valeur_par"),
        lambda key: [
            (axe, str(key[index]), par, key[0].replace(day=1), key[par_index])
            for axe, index, par, par_index in _PAIR_INDEXES
        ],
    ),
)


def _add_to_every_table() -> CompiledSql:
    """One statement adds an event's deltas to every table: per table, an upsert of its rows passed as one
    array per column (`unnest`), so the statement has one shape whatever the number of rows, is prepared
    once, and costs one round trip per event (an upsert per table and per row, through the ORM, had cost
    the consumer more than PostgreSQL spent)."""
    parts, names = [], []
    for table, keys, _ in _TABLES:
        columns = (*keys, *METRIQUES)
        arrays = []
        for column in columns:
            names.append(f"{table.name}.{column}")
            arrays.append(f"${len(names)}::{table.c[column].type}[]")  # DATE, BIGINT, VARCHAR(20)
        added = ", ".join(f"{m} = t.{m} + excluded.{m}" for m in METRIQUES)
        parts.append(
            f"add_{table.name} AS (INSERT INTO {table.name} AS t ({', '.join(columns)})"  # noqa: S608 - fixed names
            f" SELECT * FROM unnest({', '.join(arrays)})"
            f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {added})"
        )
    return CompiledSql(f"WITH {', '.join(parts)} SELECT 1", tuple(names), {})


_ADD = _add_to_every_table()


async def add(session: AsyncSession, deltas: Mapping[Key, Mapping[str, int]]) -> None:
    """Add the deltas to every table. Rows are sorted by key, so that two transactions adding to the same
    days lock their rows in the same order (no deadlock); a row whose every metric nets to zero is left
    out."""
    if not deltas:
        return
    values: dict[str, list[Any]] = {}
    for table, keys, rows_of in _TABLES:
        sums: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
        for key, delta in deltas.items():
            for row in rows_of(key):
                sums[row].update(delta)
        rows = sorted(row for row, sums_of in sums.items() if any(sums_of[m] for m in METRIQUES))
        for i, column in enumerate(keys):
            values[f"{table.name}.{column}"] = [row[i] for row in rows]
        for m in METRIQUES:
            values[f"{table.name}.{m}"] = [sums[row][m] for row in rows]
    await fetch(await session.connection(), _ADD, values)
