"""Readings of meters: ingestion (HTTP batches and the MQTT worker's flushes share `ingest`) and the
history, raw or downsampled (docs/assets.md, "Meters and readings").

Ingestion rules:
- a reading is identified by its meter and instant: one already stored is ignored (a `doublon`), not an
  error, and so is a second one for the same instant in a batch;
- an instant more than `MAX_AVANCE` ahead of the clock is refused;
- a counter (`nature = compteur`) only increases in time order: each reading is compared with its
  neighbours, stored or in the batch (readings may arrive out of order), and one lower than the reading
  before it is refused unless it is flagged `remise_a_zero`; the whole batch is refused then;
- the new readings of a batch are stored by one statement with their hourly rollups, and announced by
  one `assets.releves.recorded.v1`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets import releves_repository as repo
from mif_assets.events import ReleveRecorded, RelevesRecorded
from mif_assets.models import NatureCompteur
from mif_assets.releves_repository import CompteurRef
from mif_common.datetimes import now
from mif_common.errors import Unprocessable
from mif_common.events import add_event

MAX_AVANCE = timedelta(minutes=5)


class ReleveRefuse(Unprocessable):
    """A reading of the batch breaks a rule; `index` is its position in the batch as sent."""

    slug = "releve-refused"

    def __init__(self, detail: str, *, index: int) -> None:
        super().__init__(detail, errors=[{"field": f"releves.{index}", "message": detail}], index=index)
        self.index = index


@dataclass(frozen=True, slots=True)
class Lecture:
    horodatage: datetime
    valeur: float
    remise_a_zero: bool = False


@dataclass(frozen=True, slots=True)
class Resultat:
    acceptes: int
    doublons: int
    premier: datetime | None
    dernier: datetime | None


def _fmt(value: float) -> str:
    return f"{value:g}"


def _first_per_instant(lectures: Sequence[Lecture]) -> dict[datetime, int]:
    """Instant -> position in the batch of its first reading (a later one for the same instant is a
    duplicate)."""
    first: dict[datetime, int] = {}
    for index, lecture in enumerate(lectures):
        first.setdefault(lecture.horodatage, index)
    return first


def _check_future(lectures: Sequence[Lecture]) -> None:
    limit = now() + MAX_AVANCE
    for index, lecture in enumerate(lectures):
        if lecture.horodatage > limit:
            raise ReleveRefuse(
                f"Reading {index} is dated {lecture.horodatage.isoformat()}, in the future; check the clock of "
                "the device that sent it (at most 5 minutes ahead is accepted).",
                index=index,
            )


async def _check_counter(
    session: AsyncSession, compteur: CompteurRef, lectures: Sequence[Lecture], first: dict[datetime, int]
) -> None:
    """Refuse the batch when a new reading breaks the counter's order with a neighbour (stored or new)."""
    instants = sorted(first)
    stored = await repo.neighbours(session, compteur_id=compteur.id, premier=instants[0], dernier=instants[-1])
    # (instant, value, reset, position in the batch or None for a stored reading)
    merged: dict[datetime, tuple[float, bool, int | None]] = {
        row["horodatage"]: (row["valeur"], row["remise_a_zero"], None) for row in stored
    }
    for instant, position in first.items():
        if instant not in merged:
            lecture = lectures[position]
            merged[instant] = (lecture.valeur, lecture.remise_a_zero, position)
    previous: tuple[datetime, float, int | None] | None = None
    for instant in sorted(merged):
        valeur, reset, index = merged[instant]
        if previous is not None and valeur < previous[1] and not reset:
            before, before_value, before_index = previous
            if index is not None:
                raise ReleveRefuse(
                    f"Reading {index} ({_fmt(valeur)} {compteur.unite} at {instant.isoformat()}) is lower than the "
                    f"reading before it ({_fmt(before_value)} at {before.isoformat()}) on the counter "
                    f"'{compteur.code}', which only increases; flag it \"remise_a_zero\": true if the counter "
                    "was reset or replaced. Nothing of the batch was stored.",
                    index=index,
                )
            if before_index is not None:
                raise ReleveRefuse(
                    f"Reading {before_index} ({_fmt(before_value)} {compteur.unite} at {before.isoformat()}) is "
                    f"higher than the stored reading after it ({_fmt(valeur)} at {instant.isoformat()}) on the "
                    f"counter '{compteur.code}', which only increases. Nothing of the batch was stored.",
                    index=before_index,
                )
        previous = (instant, valeur, index)


async def ingest(session: AsyncSession, compteur: CompteurRef, lectures: Sequence[Lecture], source: str) -> Resultat:
    """Check and store a batch of readings of `compteur` (locked by the caller: `lock_compteur*`), and
    announce the new ones; flushes nothing else, commits nothing."""
    _check_future(lectures)
    first = _first_per_instant(lectures)
    if compteur.nature == NatureCompteur.compteur:
        await _check_counter(session, compteur, lectures, first)
    kept = [lectures[index] for index in first.values()]
    rows = await repo.insert_releves(
        session,
        compteur_id=compteur.id,
        source=source,
        horodatages=[lecture.horodatage for lecture in kept],
        valeurs=[lecture.valeur for lecture in kept],
        remises=[lecture.remise_a_zero for lecture in kept],
    )
    if not rows:
        return Resultat(acceptes=0, doublons=len(lectures), premier=None, dernier=None)
    values = [row["valeur"] for row in rows]
    releves = [
        ReleveRecorded.model_construct(
            horodatage=row["horodatage"], valeur=row["valeur"], remise_a_zero=row["remise_a_zero"]
        )
        for row in rows
    ]
    premier, dernier = rows[0]["horodatage"], rows[-1]["horodatage"]
    event = RelevesRecorded(
        compteur_id=compteur.id,
        equipement_id=compteur.equipement_id,
        code=compteur.code,
        nature=compteur.nature,
        unite=compteur.unite,
        source=source,
        nombre=len(rows),
        premier=premier,
        dernier=dernier,
        min=min(values),
        max=max(values),
        derniere_valeur=values[-1],
        remise_a_zero=any(r.remise_a_zero for r in releves),
        releves=releves,
        occurred_at=now(),
    )
    await add_event(session, event, subject=compteur.id)
    return Resultat(acceptes=len(rows), doublons=len(lectures) - len(rows), premier=premier, dernier=dernier)


# --- history ------------------------------------------------------------------------------------

# Buckets are aligned on this instant (a Monday, 00:00 UTC): days start at midnight UTC, weeks on Monday.
ORIGINE = datetime(2000, 1, 3, tzinfo=UTC)
HEURE = timedelta(hours=1)
MAX_BUCKETS = 10_000
MAX_RAW_ROWS = 100_000
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


class PasInvalide(Unprocessable):
    slug = "invalid-step"


def parse_pas(text: str) -> timedelta:
    """`<n>m`, `<n>h` or `<n>d` (n from 1 to 9999, at most 366 days), else a 422."""
    unit = _UNITS.get(text[-1:]) if text else None
    digits = text[:-1]
    if unit is None or not digits.isascii() or not digits.isdigit() or digits[0] == "0" or len(digits) > 4:
        raise PasInvalide(
            f"'{text}' is not a step: write a number and a unit, m (minutes), h (hours) or d (days), "
            "as 1m, 15m, 1h, 6h, 1d or 7d.",
            errors=[{"field": "pas", "message": "expected <n>m, <n>h or <n>d"}],
        )
    pas = int(digits) * unit
    if pas > timedelta(days=366):
        raise PasInvalide("A step is at most 366 days.", errors=[{"field": "pas", "message": "at most 366 days"}])
    return pas


def bucket_range(pas: timedelta, depuis: datetime, jusqu_a: datetime) -> tuple[datetime, datetime]:
    """The whole buckets that overlap [depuis, jusqu_a): from the start of the first to the end of the
    last."""
    start = ORIGINE + ((depuis - ORIGINE) // pas) * pas
    end = ORIGINE + ((jusqu_a - timedelta(microseconds=1) - ORIGINE) // pas + 1) * pas
    return start, end
