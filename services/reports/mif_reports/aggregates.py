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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

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


def _upsert(table: sa.Table, keys: tuple[str, ...]) -> Any:
    """One row's upsert, built once: run with a list of rows (executemany), its compiled form is reused
    by every event (a multi-row VALUES changes shape with the number of rows, and was compiled afresh
    each time: a third of the consumer's time)."""
    insert = pg_insert(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={m: table.c[m] + insert.excluded[m] for m in METRIQUES},
    )


_FINE_KEYS = ("jour", "client_id", "equipement_id", "technicien_id", "type", "priorite")
_GLOBAL_KEYS = ("jour", "type", "priorite")
_MONTH_KEYS = ("axe", "valeur", "mois", "type", "priorite")
_TOTAL_DAY_KEYS = ("axe", "valeur", "jour")
_TOTAL_MONTH_KEYS = ("axe", "valeur", "mois")
_ADD_FINE = _upsert(agregat_jour, _FINE_KEYS)
_ADD_GLOBAL = _upsert(agregat_jour_global, _GLOBAL_KEYS)
_ADD_MONTH = _upsert(agregat_mois, _MONTH_KEYS)
_ADD_TOTAL_DAY = _upsert(agregat_total_jour, _TOTAL_DAY_KEYS)
_ADD_TOTAL_MONTH = _upsert(agregat_total_mois, _TOTAL_MONTH_KEYS)
_PAIR_MONTH_KEYS = ("axe", "valeur", "par", "mois", "valeur_par")
_ADD_PAIR_MONTH = _upsert(agregat_paire_mois, _PAIR_MONTH_KEYS)
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


def _rows(sums: Mapping[tuple[Any, ...], Counter[str]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Upsert rows, keys sorted, the ones whose every metric nets to zero left out."""
    return [
        dict(zip(names, key, strict=True), **{m: sums[key][m] for m in METRIQUES})
        for key in sorted(sums)
        if any(sums[key][m] for m in METRIQUES)
    ]


async def add(session: AsyncSession, deltas: Mapping[Key, Mapping[str, int]]) -> None:
    """Add the deltas to every table. Keys are sorted so that two transactions adding to the same days
    lock their rows in the same order (no deadlock)."""
    if not deltas:
        return
    fine: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    coarse: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    monthly: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    total_daily: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    total_monthly: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    paired: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    for key, delta in deltas.items():
        fine[key[:6]].update(delta)
        coarse[(key[0], key[4], key[5])].update(delta)
        mois = key[0].replace(day=1)
        for axe, index in _AXIS_INDEX.items():
            valeur = "" if index is None else str(key[index])
            monthly[(axe, valeur, mois, key[4], key[5])].update(delta)
            total_daily[(axe, valeur, key[0])].update(delta)
            total_monthly[(axe, valeur, mois)].update(delta)
        for axe, index, par, par_index in _PAIR_INDEXES:
            paired[(axe, str(key[index]), par, mois, key[par_index])].update(delta)
    for statement, sums, names in (
        (_ADD_FINE, fine, _FINE_KEYS),
        (_ADD_GLOBAL, coarse, _GLOBAL_KEYS),
        (_ADD_MONTH, monthly, _MONTH_KEYS),
        (_ADD_TOTAL_DAY, total_daily, _TOTAL_DAY_KEYS),
        (_ADD_TOTAL_MONTH, total_monthly, _TOTAL_MONTH_KEYS),
        (_ADD_PAIR_MONTH, paired, _PAIR_MONTH_KEYS),
    ):
        if rows := _rows(sums, names):
            await session.execute(statement, rows)
