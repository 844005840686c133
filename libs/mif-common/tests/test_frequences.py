"""The shared frequency vocabulary: every spelling, the domain days, the messages, and the two field types
(`FrequenceIn` for plans, `JoursOuFrequence` for a number of days such as an equipment's interval)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from mif_common.frequences import (
    JOURS,
    Frequence,
    FrequenceIn,
    FrequenceInconnue,
    JoursOuFrequence,
    accepted_values,
    accepted_words,
    parse_frequence,
)

CANONICAL_DAYS = {
    "journalier": 1,
    "hebdomadaire": 7,
    "mensuel": 30,
    "trimestriel": 90,
    "semestriel": 182,
    "annuel": 365,
}

SPELLINGS = [
    ("journalier", "journalier"),
    ("journaliere", "journalier"),
    ("Journalière", "journalier"),
    ("quotidienne", "journalier"),
    ("daily", "journalier"),
    ("hebdomadaire", "hebdomadaire"),
    ("weekly", "hebdomadaire"),
    ("WEEKLY", "hebdomadaire"),
    ("mensuel", "mensuel"),
    ("mensuelle", "mensuel"),
    ("Monthly", "mensuel"),
    ("trimestriel", "trimestriel"),
    ("trimestrielle", "trimestriel"),
    ("quarterly", "trimestriel"),
    ("semestriel", "semestriel"),
    ("semestrielle", "semestriel"),
    ("semiannual", "semestriel"),
    ("semi-annual", "semestriel"),
    ("semi_annual", "semestriel"),
    ("biannual", "semestriel"),
    ("half yearly", "semestriel"),
    ("annuel", "annuel"),
    ("annuelle", "annuel"),
    ("yearly", "annuel"),
    ("annual", "annuel"),
    ("  Annuel  ", "annuel"),
]


@pytest.mark.parametrize(("text", "expected"), SPELLINGS)
def test_every_accepted_spelling_gives_the_canonical_value(text: str, expected: str) -> None:
    assert parse_frequence(text) is Frequence(expected)


@pytest.mark.parametrize("text", ["", "biennal", "every day", "30", "mensuels", "hebdo", "{x}"])
def test_unknown_frequencies_name_the_accepted_values(text: str) -> None:
    with pytest.raises(FrequenceInconnue) as raised:
        parse_frequence(text)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert message == f"Unknown frequency '{text}'. Accepted values: {accepted_values()}."
    for word in accepted_words():
        assert word in message


def test_days_are_the_domain_days() -> None:
    assert {f.value: d for f, d in JOURS.items()} == CANONICAL_DAYS
    assert [f.value for f in Frequence] == list(CANONICAL_DAYS)


def test_accepted_words_are_normalised_and_each_parses() -> None:
    words = accepted_words()
    assert len(words) == len(set(words))
    assert words[0] == "journalier" and {"mensuelle", "monthly", "biannual", "yearly"} <= set(words)
    for word in words:
        assert word == word.lower() and word.isascii() and word.isalpha()
        parse_frequence(word)
    assert accepted_values().startswith("journalier (journaliere, quotidien, quotidienne, daily); hebdomadaire (")


class Plan(BaseModel):
    frequence: FrequenceIn


def test_frequence_in_answers_the_canonical_value() -> None:
    assert Plan(frequence="Mensuelle").frequence is Frequence.mensuel
    assert Plan(frequence=Frequence.annuel).model_dump(mode="json") == {"frequence": "annuel"}
    with pytest.raises(ValidationError) as raised:
        Plan(frequence="biennal")
    [error] = raised.value.errors()
    assert error["type"] == "frequence"
    assert error["msg"].startswith("Unknown frequency 'biennal'. Accepted values: journalier (journaliere")
    with pytest.raises(ValidationError):
        Plan(frequence=30)  # type: ignore[arg-type]


Jours = Annotated[int, JoursOuFrequence(ge=1, le=3650), Field(description="Maintenance interval.")]


class Equipement(BaseModel):
    frequence_entretien: Jours | None = None


@pytest.mark.parametrize(("text", "expected"), SPELLINGS)
def test_days_fields_turn_every_spelling_into_its_days(text: str, expected: str) -> None:
    assert Equipement(frequence_entretien=text).frequence_entretien == CANONICAL_DAYS[expected]  # type: ignore[arg-type]


@pytest.mark.parametrize(("sent", "days"), [(30, 30), ("30", 30), (" 45 ", 45), (1, 1), (3650, 3650), (None, None)])
def test_days_fields_keep_numbers(sent: Any, days: int | None) -> None:
    assert Equipement(frequence_entretien=sent).frequence_entretien == days


@pytest.mark.parametrize(
    ("sent", "error_type"),
    [
        (0, "greater_than_equal"),
        ("0", "greater_than_equal"),
        (3651, "less_than_equal"),
        ("-7", "greater_than_equal"),
        (1.5, "int_from_float"),
        ("1.5", "int_parsing"),
        ("biennal", "frequence"),
        ("", "frequence"),
    ],
)
def test_days_fields_refuse_out_of_bounds_numbers_and_unknown_words(sent: Any, error_type: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Equipement(frequence_entretien=sent)
    [error] = raised.value.errors()
    assert error["type"] == error_type
    if error_type == "frequence":
        assert error["msg"] == (
            f"Unknown frequency '{sent}'. Accepted values: a whole number of days from 1 to 3650, "
            f"or {accepted_values()}."
        )


def test_days_fields_document_an_integer_or_a_word() -> None:
    schema = Equipement.model_json_schema()["properties"]["frequence_entretien"]
    [choices, null] = schema["anyOf"]
    assert null == {"type": "null"}
    assert choices["description"] == "Maintenance interval."
    integer, words = choices["anyOf"]
    assert (integer["type"], integer["minimum"], integer["maximum"]) == ("integer", 1, 3650)
    assert (words["type"], words["enum"]) == ("string", list(accepted_words()))
    assert (
        "journalier 1, hebdomadaire 7, mensuel 30, trimestriel 90, semestriel 182, annuel 365" in words["description"]
    )


def test_days_fields_without_bounds_say_so_in_the_message() -> None:
    class Anything(BaseModel):
        jours: Annotated[int, JoursOuFrequence()]

    assert Anything(jours="weekly").jours == 7
    with pytest.raises(ValidationError, match=r"Accepted values: a whole number of days, or journalier"):
        Anything(jours="biennal")


def test_days_fields_must_be_integers() -> None:
    with pytest.raises(TypeError, match="int field"):

        class Wrong(BaseModel):
            jours: Annotated[str, JoursOuFrequence()]
