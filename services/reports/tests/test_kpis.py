"""Each KPI's formula against the hand-computed month of tests/dataset.py, delivered through the real
consumer path; the same figures whatever the order and however often the events arrive.

The month (Africa/Casablanca is UTC+1 in November 2026; every instant below is UTC):
- #1 corrective E1/A/T1 haute: created 2 Nov 08:00, due 3 Nov 08:00, started 09:00, closed 11:00, 120 min
  worked, parts 100 MAD then 20 MAD returned (80 MAD). Work 120 min, resolution 180 min, on time.
- #2 corrective E1/A/T1 urgente: created 10 Nov 08:00 (within 30 days of #1's closure: #1 was not a
  first-time fix), due 12:00, started 10:00, closed 14:00, 240 min. Work 240, resolution 360, late.
- #3 preventive E2/B/T2 normale: created 1 Nov 08:00, due 5 Nov 17:00, started 5 Nov 08:00, closed 10:00,
  120 min. Work 120, resolution 4 d 2 h = 5,880 min, on time.
- #4 preventive E2/B/T2: created 1 Nov, due 20 Nov, never closed: due and missed; in the backlog.
- #5 corrective E2/B basse: created 25 Nov, open. #6 corrective E1/A: created 15 Nov, cancelled 16 Nov (a
  cancelled request does not make #2 a repeat: #2 stays a first-time fix).
- E1 in `panne` 3 h on 2 Nov and 6 h on 10 Nov; E2 never.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import equipement_data
from mif_common.testing.events import Deliver, envelope
from mif_reports.kpis import working_days
from mif_reports.models import METRIQUES
from mif_reports.testing import CLIENT_A, CLIENT_B, E1, E2, TECH_1, USER_1, month_of_november, snapshots, t

Headers = dict[str, str]
NOVEMBER = {"du": "2026-11-01", "au": "2026-11-30", "pas": "mois"}


async def deliver_all(deliver: Deliver, events: list[tuple[str, dict[str, Any]]]) -> None:
    for event_type, data in events:
        await deliver(event_type, data)


async def kpi(client: httpx.AsyncClient, headers: Headers, name: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/kpis/{name}", params={**NOVEMBER, **params}, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["formule"]
    return answer


@pytest.fixture
async def november(deliver: Deliver) -> None:
    await deliver_all(deliver, month_of_november())


@pytest.mark.usefixtures("november")
async def test_mttr_per_type(client: httpx.AsyncClient, manager: Headers) -> None:
    answer = await kpi(client, manager, "mttr")
    # work: (120 + 240 + 120) / 3 = 160; resolution: (180 + 360 + 5,880) / 3 = 2,140
    assert answer["valeur"] == {"cloturees": 3, "mttr_travaux_minutes": 160.0, "mttr_resolution_minutes": 2140.0}
    assert answer["par_type"]["corrective"] == {
        "cloturees": 2,
        "mttr_travaux_minutes": 180.0,
        "mttr_resolution_minutes": 270.0,
    }
    assert answer["par_type"]["preventive"]["mttr_resolution_minutes"] == 5880.0
    assert [s["periode"] for s in answer["series"]] == ["2026-11-01"]


@pytest.mark.usefixtures("november")
async def test_sla_per_priority_preventive_compliance_and_first_time_fix(
    client: httpx.AsyncClient, manager: Headers
) -> None:
    sla = await kpi(client, manager, "sla")
    assert (sla["sla_respectees"], sla["sla_evaluees"], sla["valeur"]) == (2, 3, 0.6667)
    assert {p: v["valeur"] for p, v in sla["par_priorite"].items()} == {"haute": 1.0, "normale": 1.0, "urgente": 0.0}
    preventive = await kpi(client, manager, "conformite-preventive")
    assert (preventive["preventives_a_temps"], preventive["preventives_dues"], preventive["valeur"]) == (1, 2, 0.5)
    ftf = await kpi(client, manager, "premiere-resolution")
    assert (ftf["correctives_cloturees"], ftf["correctives_refaites"], ftf["valeur"]) == (2, 1, 0.5)


@pytest.mark.usefixtures("november")
async def test_backlog_and_its_ages(client: httpx.AsyncClient, manager: Headers) -> None:
    answer = await kpi(client, manager, "backlog")
    # created 6, left 4 (#1, #2, #3 closed, #6 cancelled): #4 (29 days old at the end) and #5 (5 days)
    assert answer["valeur"] == 2
    assert answer["ages"] == {"0-7": 1, "8-30": 1, "31-90": 0, "91+": 0}
    weekly = await kpi(client, manager, "backlog", pas="semaine", du="2026-11-02", au="2026-11-15")
    # end of the week of 2 Nov (Sunday 8th): #4 (#1 and #3 closed); of 9 Nov: #4 and #6 (cancelled on the 16th)
    assert [(s["periode"], s["valeur"]) for s in weekly["series"]] == [("2026-11-02", 1), ("2026-11-09", 2)]


async def test_backlog_ages_at_their_bounds(client: httpx.AsyncClient, manager: Headers, deliver: Deliver) -> None:
    """A bucket's bounds are whole days of age at the period's end (1 Dec 00:00 in Casablanca)."""
    end = datetime(2026, 12, 1, tzinfo=ZoneInfo("Africa/Casablanca"))
    ages = {
        9701: timedelta(days=8) - timedelta(seconds=1),  # 7 days old: 0-7
        9702: timedelta(days=8),  # 8: 8-30
        9703: timedelta(days=31) - timedelta(seconds=1),  # 30: 8-30
        9704: timedelta(days=31),  # 31: 31-90
        9705: timedelta(days=91) - timedelta(seconds=1),  # 90: 31-90
        9706: timedelta(days=91),  # 91: 91+
    }
    for iid, age in ages.items():
        for event_type, data in snapshots(
            iid, equipement_id=E1, client_id=CLIENT_A, technicien_id=TECH_1, type_="corrective", priorite="basse",
            created=end - age, limite=None,
        ):  # fmt: skip
            await deliver(event_type, data)
    answer = await kpi(client, manager, "backlog")
    assert answer["ages"] == {"0-7": 1, "8-30": 2, "31-90": 2, "91+": 1}


@pytest.mark.usefixtures("november")
async def test_costs_and_utilisation(client: httpx.AsyncClient, manager: Headers) -> None:
    costs = await kpi(client, manager, "couts", par="client")
    # labour 480 min × 250 MAD/h = 2,000 MAD; parts 80 MAD
    assert costs["valeur"] == {"cloturees": 3, "main_oeuvre": 200_000, "pieces": 8_000, "total": 208_000}
    assert [(g["client_id"], g["total"]) for g in costs["groupes"]] == [(CLIENT_A, 158_000), (CLIENT_B, 50_000)]
    utilisation = await kpi(client, manager, "utilisation")
    # 21 working days in November 2026 × 480 min × 2 technicians = 20,160 available minutes
    assert (utilisation["minutes_travaillees"], utilisation["minutes_disponibles"]) == (480, 20_160)
    assert utilisation["valeur"] == round(480 / 20_160, 4)


@pytest.mark.usefixtures("november")
async def test_mtbf_and_availability(client: httpx.AsyncClient, manager: Headers) -> None:
    answer = await kpi(client, manager, "mtbf")
    by_id = {e["equipement_id"]: e for e in answer["equipements"]}
    # November is 720 h: E1 down 9 h over 2 breakdowns
    assert by_id[E1] | {"nom": None} == {
        "equipement_id": E1,
        "nom": None,
        "pannes": 2,
        "heures_arret": 9.0,
        "mtbf_heures": 355.5,
        "disponibilite": round(711 / 720, 4),
    }
    assert (by_id[E2]["pannes"], by_id[E2]["mtbf_heures"], by_id[E2]["disponibilite"]) == (0, None, 1.0)
    assert answer["valeur"]["mtbf_heures"] == 715.5 and answer["valeur"]["disponibilite"] == round(1431 / 1440, 4)
    filtered = await kpi(client, manager, "disponibilite", type_equipement="pompe")
    assert [e["equipement_id"] for e in filtered["equipements"]] == [E2]


async def test_same_figures_whatever_the_order_and_duplicates(
    client: httpx.AsyncClient, manager: Headers, deliver: Deliver
) -> None:
    events = month_of_november()
    shuffled = events[:]
    random.Random(20261204).shuffle(shuffled)
    envelopes = [envelope(event_type, data) for event_type, data in shuffled]
    for event in envelopes:
        await deliver(event)
    # the same deliveries again (the inbox skips them) and the same facts under new ids (the read model
    # keeps the newest and ignores what it already holds)
    for event in envelopes[::2]:
        assert await deliver(event) is False
    await deliver_all(deliver, list(reversed(events)))
    figures = {}
    for name in ("mttr", "sla", "conformite-preventive", "premiere-resolution", "backlog", "couts", "mtbf"):
        figures[name] = (await kpi(client, manager, name))["valeur"]
    assert figures["mttr"]["mttr_resolution_minutes"] == 2140.0
    assert figures["sla"] == 0.6667 and figures["conformite-preventive"] == 0.5
    assert figures["premiere-resolution"] == 0.5 and figures["backlog"] == 2
    assert figures["couts"]["total"] == 208_000 and figures["mtbf"]["mtbf_heures"] == 715.5
    # The monthly sums' equipment-type axis, whichever came first, the equipment or its interventions.
    assert (await kpi(client, manager, "mttr", type_equipement="compresseur"))["valeur"]["cloturees"] == 2
    assert (await kpi(client, manager, "mttr", type_equipement="pompe"))["valeur"]["cloturees"] == 1


TYPES = ("corrective", "preventive")
# A period whose edges cut months: October and December from the daily sums, November from the monthly.
ACROSS = {"du": "2026-10-20", "au": "2026-12-03"}
ALL_KPIS: list[tuple[str, dict[str, Any]]] = [
    ("mttr", {}),
    ("sla", {}),
    ("conformite-preventive", {}),
    ("premiere-resolution", {}),
    ("backlog", {}),
    ("utilisation", {}),
    ("couts", {"par": "client"}),
    ("couts", {"par": "technicien"}),
    ("mtbf", {}),
]


@pytest.mark.usefixtures("november")
async def test_a_monthly_answer_is_the_sum_of_its_days(
    client: httpx.AsyncClient, manager: Headers, deliver: Deliver, db_session: AsyncSession
) -> None:
    """Monthly questions read the monthly sums, daily ones the daily sums: both agree, for every axis, after
    an equipment is retyped (its interventions' sums follow it to the new type). The per-axis totals are
    the per-dimension sums regrouped."""
    retyped = equipement_data(
        E1, client_id=CLIENT_A, type="surpresseur", localisation="Casablanca", version=10, updated_at=t(20, 8)
    )
    await deliver("assets.equipement.updated.v1", retyped)
    # In the edge months: 9 October is before the period (never counted), 25 October and 2 December in it.
    a = {"equipement_id": E1, "client_id": CLIENT_A, "technicien_id": TECH_1, "priorite": "haute", "limite": None}
    for iid, day, month in ((901, 9, 10), (902, 25, 10), (903, 2, 12)):
        for event_type, data in snapshots(
            iid, **a, type_="corrective", created=t(day, 8, month), started=t(day, 9, month),
            closed=t(day, 11, month), duree=60,
        ):  # fmt: skip
            await deliver(event_type, data)
    # E2 breaks down across the October edge (30 Oct 10:00 to 3 Nov 10:00 UTC, 96 h) and again on 28 Nov
    # 08:00, still down: until the period's end, 3 Dec 23:00 UTC (midnight in Casablanca), 135 h.
    for version, (statut, at) in enumerate(
        [("panne", t(30, 10, 10)), ("operationnel", t(3, 10)), ("panne", t(28, 8))], start=20
    ):
        data = equipement_data(
            E2, statut=statut, source="event", version=version, updated_at=at, client_id=CLIENT_B, type="pompe",
            localisation="Tanger",
        )  # fmt: skip
        await deliver("assets.equipement.status_changed.v1", data)
    filters: list[dict[str, Any]] = [
        {},
        {"client_id": CLIENT_A},
        {"technicien_id": TECH_1},
        {"type_equipement": "surpresseur"},
        {"type_equipement": "compresseur"},
        {"client_id": CLIENT_B, "type_equipement": "pompe"},  # two axes: the daily sums answer both
    ]
    for name, extra in ALL_KPIS:
        for filtre in filters:
            monthly = await kpi(client, manager, name, **ACROSS, pas="mois", **extra, **filtre)
            daily = await kpi(client, manager, name, **ACROSS, pas="jour", **extra, **filtre)
            assert monthly["valeur"] == daily["valeur"], (name, extra, filtre)
            for part in ("groupes", "par_technicien", "equipements"):
                assert monthly.get(part) == daily.get(part), (name, extra, filtre, part)
    mtbf = await kpi(client, manager, "mtbf", **ACROSS)
    # October and December from the episodes, November's closed breakdowns from the monthly sums and E2's
    # running one from its episode: E1's 9 h; E2 37 h in October, 59 + 63 h in November, 72 h in December.
    assert [(b["pannes"], b["heures_arret"]) for b in mtbf["series"]] == [(1, 37.0), (3, 131.0), (0, 72.0)]
    e2 = next(e for e in mtbf["equipements"] if e["equipement_id"] == E2)
    assert (e2["pannes"], e2["heures_arret"]) == (2, 231.0)
    daily = await kpi(client, manager, "mtbf", **ACROSS, pas="jour")
    assert sum(b["heures_arret"] for b in daily["series"]) == 240.0
    mttr = await kpi(client, manager, "mttr", **ACROSS, type_equipement="surpresseur")
    assert mttr["valeur"]["cloturees"] == 4  # #1 and #2 in November, 902 and 903 at the edges
    assert (await kpi(client, manager, "mttr", **ACROSS, type_equipement="compresseur"))["valeur"]["cloturees"] == 0
    # Filtered by type as well, the same questions read agregat_mois and agregat_jour, not the totals: a
    # figure that adds up is the sum of the two types'.
    additive: dict[str, Callable[[dict[str, Any]], int]] = {
        "couts": lambda answer: answer["valeur"]["total"],
        "utilisation": lambda answer: answer["minutes_travaillees"],
        "backlog": lambda answer: answer["valeur"],
        "sla": lambda answer: answer["sla_evaluees"],
    }
    for name, figure in additive.items():
        wholes = []
        for filtre in ({}, {"client_id": CLIENT_A}, {"technicien_id": TECH_1}):
            wholes.append(figure(await kpi(client, manager, name, **ACROSS, **filtre)))
            per_type = [figure(await kpi(client, manager, name, **ACROSS, **filtre, type=k)) for k in TYPES]
            assert wholes[-1] == sum(per_type), (name, filtre)
        assert wholes[0] > 0, name
    await _totals_are_the_sums_regrouped(db_session)


def _sums(key: str, table: str, *, where: str = "") -> str:
    """The non-zero sums of `table` per `key` (a select list naming axe, valeur and the period)."""
    totals = ", ".join(f"sum({m})" for m in METRIQUES)
    nonzero = " OR ".join(f"sum({m}) <> 0" for m in METRIQUES)
    return f"SELECT {key}, {totals} FROM reports.{table} {where} GROUP BY 1, 2, 3 HAVING {nonzero}"


async def _totals_are_the_sums_regrouped(session: AsyncSession) -> None:
    async def rows(sql: str) -> set[tuple[Any, ...]]:
        return {tuple(row) for row in (await session.execute(sa.text(sql))).all()}

    month = "date_trunc('month', jour)::date"
    total_mois = await rows(_sums("axe, valeur, mois", "agregat_total_mois"))
    assert total_mois
    assert total_mois == await rows(_sums("axe, valeur, mois", "agregat_mois"))
    assert total_mois == await rows(_sums(f"axe, valeur, {month}", "agregat_total_jour"))
    for axe, valeur in (("tout", "''"), ("client", "client_id::text"), ("technicien", "technicien_id::text")):
        total_jour = await rows(_sums("axe, valeur, jour", "agregat_total_jour", where=f"WHERE axe = '{axe}'"))
        assert total_jour
        assert total_jour == await rows(_sums(f"'{axe}', {valeur}, jour", "agregat_jour")), axe
    # The pair sums: a client's or a technician's month per technician or client is the per-dimension sums
    # regrouped; an axis's month over every value of the other is that axis's monthly total.
    for axe, valeur, par, valeur_par in (
        ("client", "client_id", "technicien", "technicien_id"),
        ("technicien", "technicien_id", "client", "client_id"),
    ):
        paires = await rows(
            _sums("valeur, mois, valeur_par", "agregat_paire_mois", where=f"WHERE axe = '{axe}' AND par = '{par}'")
        )
        assert paires
        assert paires == await rows(_sums(f"{valeur}::text, {month}, {valeur_par}", "agregat_jour")), axe
    for par in ("client", "technicien"):
        where = f"WHERE axe = 'type_equipement' AND par = '{par}'"
        per_type = await rows(_sums("axe, valeur, mois", "agregat_paire_mois", where=where))
        assert per_type
        by_type = "WHERE axe = 'type_equipement'"
        assert per_type == await rows(_sums("axe, valeur, mois", "agregat_total_mois", where=by_type))


@pytest.mark.usefixtures("november")
async def test_a_client_sees_only_its_organisation(
    client: httpx.AsyncClient, client_user: Callable[[int], Headers]
) -> None:
    own = client_user(CLIENT_A)
    mttr = await kpi(client, own, "mttr")
    assert mttr["valeur"]["cloturees"] == 2 and mttr["filtres"] == {"client_id": CLIENT_A}
    costs = await kpi(client, own, "couts", par="client")
    assert [g["client_id"] for g in costs["groupes"]] == [CLIENT_A]
    mtbf = await kpi(client, own, "mtbf")
    assert [e["equipement_id"] for e in mtbf["equipements"]] == [E1]
    refused = await client.get("/api/v1/kpis/sla", params={"client_id": CLIENT_B}, headers=own)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")


@pytest.mark.usefixtures("november")
async def test_a_technician_sees_its_own_interventions(
    client: httpx.AsyncClient, auth_headers: Callable[..., Headers]
) -> None:
    tech = auth_headers("technicien", user_id=USER_1)
    mttr = await kpi(client, tech, "mttr")
    assert mttr["valeur"]["cloturees"] == 2  # #1 and #2
    unknown = auth_headers("technicien", user_id=9_999)
    assert (await kpi(client, unknown, "mttr"))["valeur"]["cloturees"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"du": "2026-12-01", "au": "2026-11-01"},
        {"du": "2000-01-01", "au": "2026-11-01", "pas": "jour"},
        {"pas": "annee"},
        {"du": "not-a-date"},
        {"client_id": "0"},
        {"type": "unknown"},
        {"du": "0001-01-01", "au": "0001-01-02"},
        {"du": "9999-12-30", "au": "9999-12-31"},
    ],
)
async def test_bad_questions_are_422(client: httpx.AsyncClient, manager: Headers, params: dict[str, str]) -> None:
    response = await client.get("/api/v1/kpis/mttr", params=params, headers=manager)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_list_of_kpis_has_every_formula(client: httpx.AsyncClient, manager: Headers) -> None:
    response = await client.get("/api/v1/kpis", headers=manager)
    assert response.status_code == 200
    assert {k["kpi"] for k in response.json()} == {
        "mttr", "mtbf", "disponibilite", "backlog", "conformite-preventive", "sla", "premiere-resolution",
        "utilisation", "couts",
    }  # fmt: skip


def test_working_days_are_monday_to_friday() -> None:
    for offset in range(14):
        start = date(2026, 11, 2) + timedelta(days=offset)  # a Monday, then every weekday twice
        for length in range(-2, 45):
            end = start + timedelta(days=length)
            expected = sum((start + timedelta(days=i)).weekday() < 5 for i in range(max(0, length)))
            assert working_days(start, end) == expected, (start, end)
    assert working_days(date(2024, 12, 6), date(2026, 12, 7)) == 521
