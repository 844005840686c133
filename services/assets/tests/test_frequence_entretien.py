"""Equipment `frequence_entretien`: a number of days, or the frequency words plans accept (DOMAIN.md §2,
§8: the frontend's form sends words), converted into days and answered as the integer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import Headers, Make, outbox_envelopes
from mif_common.frequences import Frequence


def body(**fields: Any) -> dict[str, Any]:
    return {"nom": "Pompe doseuse", "type": "pompe", "localisation": "Station 2", **fields}


@pytest.mark.parametrize(
    ("sent", "days"),
    [
        ("mensuel", 30),
        ("monthly", 30),
        ("Mensuelle", 30),
        ("hebdomadaire", 7),
        ("weekly", 7),
        ("trimestriel", 90),
        ("quarterly", 90),
        ("trimestrielle", 90),
        ("semestriel", 182),
        ("semiannual", 182),
        ("biannual", 182),
        ("annuel", 365),
        ("yearly", 365),
        ("annuelle", 365),
        ("journalier", 1),
        ("daily", 1),
        ("Journalière", 1),
        (45, 45),
        ("30", 30),
        (3650, 3650),
    ],
)
async def test_create_accepts_days_and_frequency_words(
    client: httpx.AsyncClient, manager: Headers, db_session: AsyncSession, sent: Any, days: int
) -> None:
    created = await client.post("/api/v1/equipements", json=body(frequence_entretien=sent), headers=manager)
    assert created.status_code == 201, created.text
    eid = created.json()["id"]
    assert created.json()["frequence_entretien"] == days
    assert (await client.get(f"/api/v1/equipements/{eid}", headers=manager)).json()["frequence_entretien"] == days
    [event] = await outbox_envelopes(db_session, entity="equipement", subject=eid)
    assert event["data"]["frequence_entretien"] == days


async def test_update_accepts_days_and_frequency_words(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make
) -> None:
    eid = (await make_equipement(frequence_entretien=90))["id"]
    for sent, days in [("monthly", 30), ("hebdomadaire", 7), ("semestrielle", 182), ("365", 365), (14, 14)]:
        updated = await client.put(f"/api/v1/equipements/{eid}", json={"frequence_entretien": sent}, headers=manager)
        assert updated.status_code == 200, updated.text
        assert updated.json()["frequence_entretien"] == days
        got = await client.get(f"/api/v1/equipements/{eid}", headers=manager)
        assert got.json()["frequence_entretien"] == days
    cleared = await client.put(f"/api/v1/equipements/{eid}", json={"frequence_entretien": None}, headers=manager)
    assert cleared.json()["frequence_entretien"] is None


async def test_the_same_interval_in_a_word_is_no_change(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, db_session: AsyncSession
) -> None:
    eid = (await make_equipement(frequence_entretien=30))["id"]
    same = await client.put(f"/api/v1/equipements/{eid}", json={"frequence_entretien": "mensuel"}, headers=manager)
    assert same.status_code == 200 and same.json()["frequence_entretien"] == 30
    events = await outbox_envelopes(db_session, entity="equipement", subject=eid)
    assert [e["type"] for e in events] == ["assets.equipement.created.v1"]


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.parametrize("sent", ["biennal", "every month", "mensuels"])
async def test_an_unknown_word_is_refused_with_the_accepted_values(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, method: str, sent: str
) -> None:
    if method == "POST":
        response = await client.post("/api/v1/equipements", json=body(frequence_entretien=sent), headers=manager)
    else:
        eid = (await make_equipement(frequence_entretien=90))["id"]
        response = await client.put(f"/api/v1/equipements/{eid}", json={"frequence_entretien": sent}, headers=manager)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["field"] == "frequence_entretien"
    message = error["message"]
    assert message.startswith(f"Unknown frequency '{sent}'. Accepted values: a whole number of days from 1 to 3650, ")
    for word in [*Frequence, "mensuelle", "monthly", "weekly", "quarterly", "biannual", "yearly", "daily"]:
        assert word in message
    if method == "PUT":
        assert (await client.get(f"/api/v1/equipements/{eid}", headers=manager)).json()["frequence_entretien"] == 90


@pytest.mark.parametrize("sent", ["", "   "])
async def test_an_empty_form_field_means_no_interval(
    client: httpx.AsyncClient, manager: Headers, make_equipement: Make, sent: str
) -> None:
    created = await client.post("/api/v1/equipements", json=body(frequence_entretien=sent), headers=manager)
    assert created.status_code == 201, created.text
    assert created.json()["frequence_entretien"] is None
    eid = (await make_equipement(frequence_entretien=90))["id"]
    cleared = await client.put(f"/api/v1/equipements/{eid}", json={"frequence_entretien": sent}, headers=manager)
    assert cleared.status_code == 200 and cleared.json()["frequence_entretien"] is None


@pytest.mark.parametrize("sent", [0, "0", -7, "-7", 3651, "3651", 1.5, "1.5", "30 jours"])
async def test_numbers_keep_their_bounds(client: httpx.AsyncClient, manager: Headers, sent: Any) -> None:
    response = await client.post("/api/v1/equipements", json=body(frequence_entretien=sent), headers=manager)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["frequence_entretien"]


async def test_openapi_documents_an_integer_or_a_word(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/assets/openapi.json")).json()
    for model in ("EquipementCreate", "EquipementUpdate"):
        field = spec["components"]["schemas"][model]["properties"]["frequence_entretien"]
        [choices] = [c for c in field["anyOf"] if "anyOf" in c]
        assert "frequency word" in choices["description"]
        integer, words = choices["anyOf"]
        assert (integer["type"], integer["minimum"], integer["maximum"]) == ("integer", 1, 3650)
        assert words["type"] == "string"
        assert {"mensuel", "mensuelle", "monthly", "weekly", "hebdomadaire", "semiannual", "yearly"} <= set(
            words["enum"]
        )
        assert "mensuel 30" in words["description"] and "annuel 365" in words["description"]
        assert {"type": "null"} in field["anyOf"]
    out = spec["components"]["schemas"]["EquipementOut"]["properties"]["frequence_entretien"]
    assert {"type": "integer"} in out["anyOf"]
