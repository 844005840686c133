"""Maintenance frequencies (DOMAIN.md §2): the canonical values, their days, every spelling clients send.

The one place for this vocabulary. A plan's `frequence` (planning) keeps the canonical word; an
equipment's `frequence_entretien` (assets) is a number of days and takes the same words, converted
into their days. Either way the API answers the canonical value.

- `Frequence`, `JOURS`: the canonical values and their whole number of days.
- `parse_frequence(text)`: any accepted spelling (case, accents, spaces, hyphens and underscores do not
  matter) to its `Frequence`; `FrequenceInconnue` (a `ValueError`) names the accepted values otherwise.
- `accepted_values()`, `accepted_words()`: the accepted spellings, for messages and documentation.
- `FrequenceIn`: a request-body field type holding a `Frequence`.
- `JoursOuFrequence(ge=..., le=...)`: `Annotated[int, JoursOuFrequence(ge=1, le=3650)]` is a number of
  days (an integer, or a string of digits as forms send) or a frequency word answered as its days.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema


class Frequence(StrEnum):
    journalier = "journalier"
    hebdomadaire = "hebdomadaire"
    mensuel = "mensuel"
    trimestriel = "trimestriel"
    semestriel = "semestriel"
    annuel = "annuel"


JOURS: dict[Frequence, int] = {
    Frequence.journalier: 1,
    Frequence.hebdomadaire: 7,
    Frequence.mensuel: 30,
    Frequence.trimestriel: 90,
    Frequence.semestriel: 182,
    Frequence.annuel: 365,
}

# Every accepted spelling, normalised (lower case, no accents, no spaces, hyphens or underscores):
# the canonical value, its feminine form, and the English words the frontend sends.
_SPELLINGS: dict[Frequence, tuple[str, ...]] = {
    Frequence.journalier: ("journalier", "journaliere", "quotidien", "quotidienne", "daily"),
    Frequence.hebdomadaire: ("hebdomadaire", "weekly"),
    Frequence.mensuel: ("mensuel", "mensuelle", "monthly"),
    Frequence.trimestriel: ("trimestriel", "trimestrielle", "quarterly"),
    Frequence.semestriel: ("semestriel", "semestrielle", "semiannual", "semiannually", "biannual", "halfyearly"),
    Frequence.annuel: ("annuel", "annuelle", "yearly", "annual", "annually"),
}
_LOOKUP: dict[str, Frequence] = {spelling: f for f, spellings in _SPELLINGS.items() for spelling in spellings}


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in plain if c not in " -_")


def accepted_values() -> str:
    """A sentence listing what `parse_frequence` accepts, for error messages."""
    return "; ".join(f"{f.value} ({', '.join(s for s in _SPELLINGS[f] if s != f.value)})" for f in Frequence)


def accepted_words() -> tuple[str, ...]:
    """Every accepted spelling in its normalised form (canonical value first, frequency by frequency)."""
    return tuple(spelling for f in Frequence for spelling in _SPELLINGS[f])


class FrequenceInconnue(ValueError):
    """Not a frequency the suite knows."""


def parse_frequence(text: str) -> Frequence:
    """The canonical frequency for any accepted spelling (case and accents do not matter)."""
    found = _LOOKUP.get(_normalise(text))
    if found is None:
        raise FrequenceInconnue(f"Unknown frequency '{text}'. Accepted values: {accepted_values()}.")
    return found


# --- request-body field types -------------------------------------------------------------------


def _frequence_before(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_frequence(value)
        except FrequenceInconnue as exc:
            raise PydanticCustomError("frequence", str(exc)) from exc
    return value


FrequenceIn = Annotated[
    Frequence,
    BeforeValidator(_frequence_before),
    Field(
        description=(
            "journalier, hebdomadaire, mensuel, trimestriel, semestriel or annuel; the feminine forms "
            "(mensuelle, ...) and the English words (daily, weekly, monthly, quarterly, semiannual/biannual, "
            "yearly) are accepted too, in any case, with or without accents. Answers use the canonical value."
        )
    ),
]


def _days_sentence() -> str:
    return ", ".join(f"{f.value} {JOURS[f]}" for f in Frequence)


@dataclass(frozen=True)
class JoursOuFrequence:
    """Metadata of an `int` field counting days that also takes a frequency word.

    `Annotated[int, JoursOuFrequence(ge=1, le=3650)]` accepts an integer within the bounds, a string of
    digits ("30", as forms send) within the bounds, or any spelling `parse_frequence` accepts, which
    becomes its days (`mensuel` and `monthly` are 30). Any other word is refused with a message listing
    the accepted values. The JSON schema says "an integer or one of these words".
    """

    ge: int | None = None
    le: int | None = None

    def _range(self) -> str:
        if self.ge is not None and self.le is not None:
            return f" from {self.ge} to {self.le}"
        if self.ge is not None:
            return f" of at least {self.ge}"
        if self.le is not None:
            return f" of at most {self.le}"
        return ""

    def _before(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = _LOOKUP.get(_normalise(value))
        if found is not None:
            return JOURS[found]
        if any(c.isdigit() for c in value):
            return value  # a number written as text: the integer validation (and its bounds) decide
        raise PydanticCustomError(
            "frequence",
            f"Unknown frequency '{value}'. Accepted values: a whole number of days{self._range()}, "
            f"or {accepted_values()}.",
        )

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        if source is not int:
            raise TypeError(f"JoursOuFrequence annotates an int field, not {source!r}")
        days = core_schema.int_schema(ge=self.ge, le=self.le)
        return core_schema.no_info_before_validator_function(self._before, days)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        days = dict(handler(schema))
        field_description = days.pop("description", None)  # the field's own, when it says what the days are
        words: JsonSchemaValue = {
            "anyOf": [
                {**days, "description": f"A whole number of days{self._range()}."},
                {
                    "type": "string",
                    "enum": list(accepted_words()),
                    "description": (
                        f"A frequency word, answered as its days: {_days_sentence()}; the feminine and "
                        "English spellings count as their canonical word; case, accents, spaces and hyphens "
                        "do not matter. A string of digits counts as that number of days."
                    ),
                },
            ]
        }
        if field_description is not None:
            words["description"] = field_description
        return words
