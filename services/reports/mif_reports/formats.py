"""French formats shared by every export: dates in the company's time zone, amounts in MAD, labels."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from zoneinfo import ZoneInfo

FUSEAU = ZoneInfo("Africa/Casablanca")
NBSP = "\u00a0"

MOIS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)

LIBELLES_STATUT: Mapping[str, str] = MappingProxyType(
    {
        "ouverte": "Ouverte",
        "affectee": "Affectée",
        "en_cours": "En cours",
        "en_attente": "En attente",
        "cloturee": "Clôturée",
        "annulee": "Annulée",
        "archivee": "Archivée",
    }
)
LIBELLES_TYPE: Mapping[str, str] = MappingProxyType(
    {
        "corrective": "Corrective",
        "preventive": "Préventive",
        "ameliorative": "Améliorative",
        "diagnostic": "Diagnostic",
    }
)
LIBELLES_PRIORITE: Mapping[str, str] = MappingProxyType(
    {
        "urgente": "Urgente",
        "haute": "Haute",
        "normale": "Normale",
        "basse": "Basse",
        "programmee": "Programmée",
    }
)


def libelle(libelles: Mapping[str, str], code: str | None) -> str:
    """The French label of a code; an unknown code is shown as is rather than hidden."""
    if code is None:
        return ""
    return libelles.get(code, code)


def heure_locale(d: datetime) -> datetime:
    """`d` in Africa/Casablanca; a naive datetime is taken as UTC (what the services store)."""
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.astimezone(FUSEAU)


def date_fr(d: date | datetime | None) -> str:
    """`04/12/2026`; a datetime is first converted to Africa/Casablanca."""
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = heure_locale(d)
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def datetime_fr(d: datetime | None) -> str:
    """`04/12/2026 14:05` in Africa/Casablanca."""
    if d is None:
        return ""
    local = heure_locale(d)
    return f"{date_fr(local)} {local.hour:02d}:{local.minute:02d}"


def mois_fr(d: date) -> str:
    """`novembre 2026`."""
    return f"{MOIS_FR[d.month - 1]} {d.year}"


def _arrondi(x: float | int | Decimal, decimales: int) -> Decimal:
    # Through str() so that 2.675 rounds like the user reads it (2,68), not like its binary value (2,67).
    exact = x if isinstance(x, Decimal) else Decimal(str(x))
    return exact.quantize(Decimal(1).scaleb(-decimales), rounding=ROUND_HALF_UP)


def _groupe(entier: int) -> str:
    return f"{entier:,}".replace(",", NBSP)


def _decimal_fr(valeur: Decimal, decimales: int) -> str:
    signe = "-" if valeur < 0 else ""
    absolu = abs(valeur)
    entier = int(absolu)
    texte = _groupe(entier)
    if decimales > 0:
        fraction = format(absolu - entier, f".{decimales}f")[2:]
        texte = f"{texte},{fraction}"
    return signe + texte


def nombre_fr(x: float | int | Decimal | None, decimales: int = 1) -> str:
    """`1 234,5` (no-break space between thousands); always `decimales` digits after the comma."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    valeur = _arrondi(x, decimales)
    if valeur == 0:
        valeur = abs(valeur)  # no "-0,0"
    return _decimal_fr(valeur, decimales)


def montant_fr(centimes: int | None) -> str:
    """123450 → `1 234,50 MAD` (no-break spaces)."""
    if centimes is None:
        return ""
    signe = "-" if centimes < 0 else ""
    entier, reste = divmod(abs(centimes), 100)
    return f"{signe}{_groupe(entier)},{reste:02d}{NBSP}MAD"


def pourcentage_fr(ratio: float | None, decimales: int = 1) -> str:
    """0.9234 → `92,3 %` (no-break space before %)."""
    if ratio is None or not math.isfinite(ratio):
        return ""
    return f"{nombre_fr(Decimal(str(ratio)) * 100, decimales)}{NBSP}%"


def duree_fr(minutes: float | None) -> str:
    """`45 min`, `2 h 05`, and from 24 h on `3 j 4 h` (rounded to the hour)."""
    if minutes is None or not math.isfinite(minutes):
        return ""
    signe = "-" if minutes < 0 else ""
    total = int(_arrondi(abs(minutes), 0))
    if total < 60:
        return f"{signe}{total} min"
    if total < 24 * 60:
        heures, reste = divmod(total, 60)
        return f"{signe}{heures} h {reste:02d}"
    jours, heures = divmod(int(_arrondi(Decimal(total) / 60, 0)), 24)
    return f"{signe}{jours} j {heures} h"
