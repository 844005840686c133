"""Readings: batches, idempotency per instant, the counter rule (in and out of order, resets), limits,
one event per batch, and the history raw or downsampled (rollups agreeing with the raw readings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.releves import ORIGINE
from mif_assets.testing import Headers, Make, outbox_envelopes

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def r(minutes: float, valeur: float, **extra: Any) -> dict[str, Any]:
    return {"horodatage": at(minutes), "valeur": valeur, **extra}


@pytest.fixture
def meter(client: httpx.AsyncClient, manager: Headers, make_equipement: Make) -> Any:
    async def make(code: str = "heures_marche", unite: str = "h") -> str:
        eid = (await make_equipement())["id"]
        response = await client.post(
            f"/api/v1/equipements/{eid}/compteurs", json={"code": code, "unite": unite}, headers=manager
        )
        assert response.status_code == 201, response.text
        return f"/api/v1/equipements/{eid}/compteurs/{response.json()['id']}/releves"

    return make


async def stored(client: httpx.AsyncClient, releves_url: str, headers: Headers) -> list[tuple[str, float]]:
    response = await client.get(releves_url, headers=headers)
    assert response.status_code == 200, response.text
    return [(row["horodatage"], row["valeur"]) for row in response.json()]


async def test_a_batch_is_stored_once_and_announced_by_one_event(
    client: httpx.AsyncClient, technicien: Headers, meter: Any, db_session: AsyncSession
) -> None:
    u = await meter()
    cid = int(u.split("/")[-2])
    batch = {"releves": [r(2, 12.5), r(0, 10), r(1, 11, remise_a_zero=False)], "source": "manuel"}
    response = await client.post(u, json=batch, headers=technicien)
    assert response.status_code == 201, response.text
    assert response.json() == {"acceptes": 3, "doublons": 0, "premier": at(0), "dernier": at(2)}
    # The same readings again, and one new: only the new one is stored; the others are not errors.
    again = await client.post(u, json={"releves": [*batch["releves"], r(3, 13)]}, headers=technicien)
    assert again.json() == {"acceptes": 1, "doublons": 3, "premier": at(3), "dernier": at(3)}
    # A batch of nothing new: no event.
    nothing = await client.post(u, json={"releves": [r(3, 99), r(3, 99)]}, headers=technicien)
    assert nothing.json() == {"acceptes": 0, "doublons": 2, "premier": None, "dernier": None}
    assert await stored(client, u, technicien) == [(at(0), 10), (at(1), 11), (at(2), 12.5), (at(3), 13)]

    events = await outbox_envelopes(db_session, entity="releves", subject=cid)
    assert [e["type"] for e in events] == ["assets.releves.recorded.v1"] * 2
    first = events[0]["data"]
    assert {k: v for k, v in first.items() if k not in ("occurred_at", "equipement_id")} == {
        "compteur_id": cid,
        "code": "heures_marche",
        "nature": "compteur",
        "unite": "h",
        "source": "manuel",
        "nombre": 3,
        "premier": at(0),
        "dernier": at(2),
        "min": 10.0,
        "max": 12.5,
        "derniere_valeur": 12.5,
        "remise_a_zero": False,
        "releves": [
            {"horodatage": at(0), "valeur": 10.0, "remise_a_zero": False},
            {"horodatage": at(1), "valeur": 11.0, "remise_a_zero": False},
            {"horodatage": at(2), "valeur": 12.5, "remise_a_zero": False},
        ],
    }
    assert first["equipement_id"] == int(u.split("/")[4])
    assert events[1]["data"]["nombre"] == 1 and events[1]["data"]["source"] == "api"
    assert [x["horodatage"] for x in events[1]["data"]["releves"]] == [at(3)]


async def test_a_counter_only_increases_unless_reset(
    client: httpx.AsyncClient, manager: Headers, meter: Any, db_session: AsyncSession
) -> None:
    u = await meter()
    assert (await client.post(u, json={"releves": [r(0, 100), r(10, 110)]}, headers=manager)).status_code == 201

    # Lower than the reading before it, inside the batch: the whole batch is refused, naming it.
    refused = await client.post(u, json={"releves": [r(20, 120), r(30, 119)]}, headers=manager)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "releves.1"
    assert (
        "Reading 1 (119 h at 2024-03-04T10:30:00+00:00) is lower than the reading before it (120"
        in (refused.json()["detail"])
    )
    # Lower than the stored reading before it.
    below = await client.post(u, json={"releves": [r(11, 105)]}, headers=manager)
    assert below.status_code == 422 and below.json()["errors"][0]["field"] == "releves.0"
    # Out of order: between two stored readings, fine when in between...
    assert (await client.post(u, json={"releves": [r(5, 104)]}, headers=manager)).json()["acceptes"] == 1
    # ... refused when higher than the stored reading after it.
    above = await client.post(u, json={"releves": [r(7, 111)]}, headers=manager)
    assert above.status_code == 422
    assert "higher than the stored reading after it (110" in above.json()["detail"]
    assert await stored(client, u, manager) == [(at(0), 100), (at(5), 104), (at(10), 110)]

    # A flagged reset is accepted, and the counter goes on from there.
    reset = await client.post(
        u, json={"releves": [r(20, 115), r(30, 2, remise_a_zero=True), r(40, 5)]}, headers=manager
    )
    assert reset.status_code == 201, reset.text
    assert (await client.post(u, json={"releves": [r(50, 4)]}, headers=manager)).status_code == 422
    events = await outbox_envelopes(db_session, entity="releves", subject=int(u.split("/")[-2]))
    assert [e["data"]["remise_a_zero"] for e in events] == [False, False, True]
    assert events[-1]["data"]["releves"][1] == {"horodatage": at(30), "valeur": 2.0, "remise_a_zero": True}
    assert events[-1]["data"]["min"] == 2.0 and events[-1]["data"]["derniere_valeur"] == 5.0
    raw = (await client.get(u, headers=manager)).json()
    assert [x["remise_a_zero"] for x in raw] == [False, False, False, False, True, False]


async def test_a_gauge_goes_up_and_down(client: httpx.AsyncClient, manager: Headers, meter: Any) -> None:
    u = await meter("vibration", "mm/s")
    response = await client.post(u, json={"releves": [r(0, 7.5), r(1, 2.25), r(2, -1)]}, headers=manager)
    assert response.status_code == 201 and response.json()["acceptes"] == 3


async def test_batch_limits_and_bad_readings(client: httpx.AsyncClient, manager: Headers, meter: Any) -> None:
    u = await meter("cycles", "cycles")
    thousand = {"releves": [r(i, i) for i in range(1000)]}
    accepted = await client.post(u, json=thousand, headers=manager)
    assert accepted.status_code == 201 and accepted.json()["acceptes"] == 1000
    too_many = await client.post(u, json={"releves": [r(2000 + i, 5000 + i) for i in range(1001)]}, headers=manager)
    assert too_many.status_code == 422
    assert "at most 1000" in too_many.text
    assert (await client.post(u, json={"releves": []}, headers=manager)).status_code == 422
    future = datetime.now(UTC) + timedelta(minutes=30)
    ahead = await client.post(u, json={"releves": [{"horodatage": future.isoformat(), "valeur": 1e6}]}, headers=manager)
    assert ahead.status_code == 422 and "in the future" in ahead.json()["detail"]
    soon = datetime.now(UTC) + timedelta(minutes=2)
    assert (
        await client.post(u, json={"releves": [{"horodatage": soon.isoformat(), "valeur": 1e6}]}, headers=manager)
    ).status_code == 201
    for bad in [
        {"releves": [{"horodatage": "hier", "valeur": 1}]},
        {"releves": [{"horodatage": at(0), "valeur": "NaN"}]},
        {"releves": [{"horodatage": at(0)}]},
        {"releves": [r(0, 1)], "source": "mqtt"},
        {"releves": [r(0, 1, unite="h")]},
    ]:
        assert (await client.post(u, json=bad, headers=manager)).status_code == 422, bad
    missing = u.replace("/compteurs/", "/compteurs/9")
    assert (await client.post(missing, json={"releves": [r(0, 1)]}, headers=manager)).status_code == 404


async def test_downsampled_history_matches_a_hand_computed_series(
    client: httpx.AsyncClient, manager: Headers, meter: Any, db_session: AsyncSession
) -> None:
    u = await meter("temperature", "°C")
    # One reading every 10 minutes for 3 hours from 10:00: value = minute index (0..17), posted in two
    # batches out of order.
    readings = [r(10 * i, float(i)) for i in range(18)]
    assert (await client.post(u, json={"releves": readings[9:]}, headers=manager)).status_code == 201
    assert (await client.post(u, json={"releves": readings[:9]}, headers=manager)).status_code == 201

    hourly = (await client.get(u, params={"pas": "1h", "depuis": at(0), "jusqu_a": at(180)}, headers=manager)).json()
    assert hourly == [
        {"debut": at(0), "min": 0.0, "moy": 2.5, "max": 5.0, "nombre": 6},
        {"debut": at(60), "min": 6.0, "moy": 8.5, "max": 11.0, "nombre": 6},
        {"debut": at(120), "min": 12.0, "moy": 14.5, "max": 17.0, "nombre": 6},
    ]
    # 30-minute steps come from the raw readings.
    half = (await client.get(u, params={"pas": "30m", "depuis": at(0), "jusqu_a": at(60)}, headers=manager)).json()
    assert half == [
        {"debut": at(0), "min": 0.0, "moy": 1.0, "max": 2.0, "nombre": 3},
        {"debut": at(30), "min": 3.0, "moy": 4.0, "max": 5.0, "nombre": 3},
    ]
    # Whole buckets: a range starting inside a bucket still answers the whole bucket.
    inside = (await client.get(u, params={"pas": "1h", "depuis": at(70), "jusqu_a": at(80)}, headers=manager)).json()
    assert inside == [hourly[1]]
    daily = (await client.get(u, params={"pas": "1d", "depuis": at(0), "jusqu_a": at(180)}, headers=manager)).json()
    assert daily == [{"debut": "2024-03-04T00:00:00Z", "min": 0.0, "moy": 8.5, "max": 17.0, "nombre": 18}]

    # Rollups and raw readings agree: 60m (raw path) answers as 1h (rollups).
    raw_hourly = (
        await client.get(u, params={"pas": "60m", "depuis": at(0), "jusqu_a": at(180)}, headers=manager)
    ).json()
    assert raw_hourly == hourly
    rollups = await db_session.execute(
        text("SELECT heure, min, max, somme, nombre FROM releve_horaire WHERE compteur_id = :c ORDER BY heure"),
        {"c": int(u.split("/")[-2])},
    )
    assert [tuple(row)[1:] for row in rollups] == [(0, 5, 15, 6), (6, 11, 51, 6), (12, 17, 87, 6)]
    # Duplicates re-sent do not count twice in the rollups.
    assert (await client.post(u, json={"releves": readings}, headers=manager)).json()["doublons"] == 18
    assert (await client.get(u, params={"pas": "1h", "depuis": at(0), "jusqu_a": at(180)}, headers=manager)).json() == (
        hourly
    )

    page = await client.get(u, params={"depuis": at(20), "jusqu_a": at(60), "limit": 2}, headers=manager)
    assert page.headers["x-total-count"] == "4"
    assert page.json() == [
        {"horodatage": at(20), "valeur": 2.0, "source": "api", "remise_a_zero": False},
        {"horodatage": at(30), "valeur": 3.0, "source": "api", "remise_a_zero": False},
    ]
    assert 'rel="next"' in page.headers["link"]


async def test_steps_of_whole_days_read_the_daily_rollups_and_agree_with_the_hours(
    client: httpx.AsyncClient, manager: Headers, meter: Any, db_session: AsyncSession
) -> None:
    u = await meter("vibration", "mm/s")
    cid = int(u.split("/")[-2])
    # Every 90 minutes over four UTC days (from 10:00 on the 4th), values going up and down, posted in
    # three batches out of order; then the whole lot again (duplicates must not count twice).
    readings = [r(90 * i, float((i * 7) % 11)) for i in range(56)]
    for batch in (readings[40:], readings[:15], readings[15:40], readings):
        assert (await client.post(u, json={"releves": batch}, headers=manager)).status_code == 201
    span = {"depuis": "2024-03-04T00:00:00Z", "jusqu_a": "2024-03-08T00:00:00Z"}
    hours = (await client.get(u, params=span | {"pas": "1h"}, headers=manager)).json()

    def regrouped(days: int) -> list[dict[str, Any]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in hours:
            step = timedelta(days=days)
            first = ORIGINE + (datetime.fromisoformat(row["debut"]) - ORIGINE) // step * step
            groups.setdefault(first.isoformat().replace("+00:00", "Z"), []).append(row)
        return [
            {
                "debut": debut,
                "min": min(row["min"] for row in rows),
                "moy": pytest.approx(sum(row["moy"] * row["nombre"] for row in rows) / sum(x["nombre"] for x in rows)),
                "max": max(row["max"] for row in rows),
                "nombre": sum(row["nombre"] for row in rows),
            }
            for debut, rows in groups.items()
        ]

    daily = (await client.get(u, params=span | {"pas": "1d"}, headers=manager)).json()
    assert [row["debut"][:10] for row in daily] == ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
    assert sum(row["nombre"] for row in daily) == 56
    assert daily == regrouped(1)
    # Buckets of several days are aligned on the origin (2000-01-03), as every step is.
    assert (await client.get(u, params=span | {"pas": "2d"}, headers=manager)).json() == regrouped(2)
    assert (await client.get(u, params=span | {"pas": "48h"}, headers=manager)).json() == regrouped(2)
    # The daily rows are exactly the hourly ones regrouped.
    by_sql = await db_session.execute(
        text(
            "SELECT (SELECT array_agg(ROW(jour, min, max, somme, nombre)::text ORDER BY jour) FROM releve_jour"
            " WHERE compteur_id = :c),"
            " (SELECT array_agg(ROW(d, mn, mx, s, n)::text ORDER BY d) FROM (SELECT date_trunc('day', heure, 'UTC')"
            " AS d, min(min) AS mn, max(max) AS mx, sum(somme) AS s, sum(nombre) AS n FROM releve_horaire"
            " WHERE compteur_id = :c GROUP BY 1) AS h)"
        ),
        {"c": cid},
    )
    jours, heures = by_sql.one()
    assert jours == heures and len(jours) == 4


@pytest.mark.parametrize("pas", ["1", "h", "0h", "01h", "1.5h", "1 h", "1H", "1s", "1w", "-1h", "367d", "１h"])
async def test_a_step_is_parsed_strictly(client: httpx.AsyncClient, manager: Headers, meter: Any, pas: str) -> None:
    u = await meter("pression", "bar")
    response = await client.get(u, params={"pas": pas}, headers=manager)
    assert response.status_code == 422, response.text


async def test_too_many_buckets_or_raw_rows_ask_for_a_larger_step(
    client: httpx.AsyncClient, manager: Headers, meter: Any
) -> None:
    u = await meter("pression", "bar")
    year = {"pas": "1m", "depuis": "2023-01-01T00:00:00Z", "jusqu_a": "2024-01-01T00:00:00Z"}
    too_many = await client.get(u, params=year, headers=manager)
    assert too_many.status_code == 422 and "choose a larger pas" in too_many.json()["detail"]
    assert (await client.get(u, params=year | {"pas": "1h"}, headers=manager)).json() == []
    backwards = await client.get(u, params=year | {"pas": "1h", "jusqu_a": "2022-01-01T00:00:00Z"}, headers=manager)
    assert backwards.status_code == 422


async def test_a_step_under_an_hour_reads_a_bounded_number_of_readings(
    client: httpx.AsyncClient, manager: Headers, meter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mif_assets import releves

    monkeypatch.setattr(releves, "MAX_RAW_ROWS", 5)
    u = await meter("pression", "bar")
    assert (await client.post(u, json={"releves": [r(i, i) for i in range(6)]}, headers=manager)).status_code == 201
    window = {"depuis": at(0), "jusqu_a": at(60)}
    refused = await client.get(u, params=window | {"pas": "15m"}, headers=manager)
    assert refused.status_code == 422 and "holds 6 readings" in refused.json()["detail"]
    assert (await client.get(u, params=window | {"pas": "1h"}, headers=manager)).json()[0]["nombre"] == 6
