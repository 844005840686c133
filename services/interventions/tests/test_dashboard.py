"""`GET /dashboard/stats` (the exact shape of DOMAIN.md §8) and `GET /dashboard/kpis`, scoped to what
the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_assets.testing import equipement_data
from mif_auth.testing import user_data
from mif_interventions.dashboard import month_start
from mif_interventions.models import Intervention
from mif_interventions.testing import World, new_id


async def test_stats_have_the_contract_shape_and_count_what_the_caller_sees(
    client: httpx.AsyncClient, world: World, deliver: Any
) -> None:
    org_a, org_b = new_id(), new_id()
    eq_a = await world.equipement(client_id=org_a)
    eq_b = await world.equipement(client_id=org_b)
    await deliver(
        "assets.equipement.status_changed.v1", equipement_data(eq_b, client_id=org_b, statut="maintenance", version=2)
    )
    tech = await world.technicien()
    for user_id, role, client_id, active in ((new_id(), "client", org_a, True), (new_id(), "client", org_a, False)):
        await deliver("auth.user.created.v1", user_data(user_id, role, client_id=client_id, is_active=active))
    a_open = await world.intervention(equipement_id=eq_a, priorite="haute")
    a_done = await world.intervention(equipement_id=eq_a, technicien_id=tech.id, urgence=True)
    await world.act(a_done["id"], "demarrer", tech.headers)
    await world.act(a_done["id"], "cloturer", tech.headers)
    a_cancelled = await world.intervention(equipement_id=eq_a)
    await world.act(a_cancelled["id"], "annuler", remarque="doublon")
    b_work = await world.intervention(equipement_id=eq_b, technicien_id=tech.id, priorite="basse")
    await world.act(b_work["id"], "demarrer", tech.headers)
    await world.act(b_work["id"], "suspendre", tech.headers, remarque="pièce")
    assert a_open["statut"] == "ouverte"

    stats = await client.get("/api/v1/dashboard/stats", headers=world.client_user(org_a))
    assert stats.status_code == 200
    body = stats.json()
    assert set(body) == {
        "interventions",
        "taux_resolution",
        "evolution_mensuelle",
        "priorites",
        "equipements",
        "utilisateurs",
    }
    assert body["interventions"] == {
        "ouverte": 1,
        "en_cours": 0,
        "en_attente": 0,
        "terminees": 1,
        "total_mensuel": 3,
        "terminees_mensuel": 1,
    }
    assert body["taux_resolution"] == 50.0  # 1 closed of 2 not cancelled
    assert body["priorites"] == {"urgente": 1, "haute": 1, "normale": 1, "basse": 0}
    assert body["equipements"] == {"total": 1, "operationnel": 1, "maintenance": 0}
    assert body["utilisateurs"] == {"total": 2, "actifs": 1}
    now = datetime.now(UTC)
    assert [m["month"] for m in body["evolution_mensuelle"]] == [
        month_start(now, b).strftime("%Y-%m") for b in range(5, -1, -1)
    ]
    assert body["evolution_mensuelle"][-1]["total"] == 3

    as_tech = (await client.get("/api/v1/dashboard/stats", headers=tech.headers)).json()
    assert as_tech["interventions"]["en_attente"] == 1 and as_tech["interventions"]["terminees"] == 1
    as_b = (await client.get("/api/v1/dashboard/stats", headers=world.client_user(org_b))).json()
    assert as_b["equipements"] == {"total": 1, "operationnel": 0, "maintenance": 1}
    assert as_b["interventions"]["en_attente"] == 1 and as_b["interventions"]["ouverte"] == 0


async def test_kpis_backlog_late_mttr_and_sla(
    client: httpx.AsyncClient, world: World, db_session: AsyncSession
) -> None:
    org = new_id()
    eq = await world.equipement(client_id=org)
    now = datetime.now(UTC)
    day = timedelta(days=1)

    def row(**fields: Any) -> dict[str, Any]:
        base = {
            "titre": "x",
            "type": "corrective",
            "priorite": "normale",
            "equipement_id": eq,
            "client_id": org,
            "version": 1,
        }
        base.update(fields)
        base.setdefault("date_modification", base.get("date_creation", now))
        return base

    rows = [
        # closed in the period: repair 60 min, lead 3 h, on time
        row(statut="cloturee", date_creation=now - 5 * day, date_debut_travaux=now - 5 * day + timedelta(hours=2),
            date_cloture=now - 5 * day + timedelta(hours=3), date_limite=now - 2 * day),
        # closed in the period: repair 120 min, lead 5 h, late (deadline 4 h)
        row(statut="cloturee", priorite="urgente", urgence=True, date_creation=now - 4 * day,
            date_debut_travaux=now - 4 * day + timedelta(hours=3), date_cloture=now - 4 * day + timedelta(hours=5),
            date_limite=now - 4 * day + timedelta(hours=4)),
        # preventive closed in the period: repair 30 min
        row(statut="archivee", type="preventive", priorite="programmee", date_creation=now - 3 * day,
            date_debut_travaux=now - 3 * day, date_cloture=now - 3 * day + timedelta(minutes=30)),
        # closed before the period: not counted
        row(statut="cloturee", date_creation=now - 60 * day, date_debut_travaux=now - 60 * day,
            date_cloture=now - 59 * day, date_limite=now - 58 * day),
        # open backlog: one late
        row(statut="en_attente", priorite="haute", date_creation=now - 2 * day, date_limite=now - day),
        row(statut="ouverte", date_creation=now - day, date_limite=now + day),
    ]  # fmt: skip
    await db_session.execute(sa.insert(Intervention), rows)
    response = await client.get("/api/v1/dashboard/kpis", headers=world.client_user(org))
    assert response.status_code == 200, response.text
    kpis = response.json()
    assert kpis["backlog"]["total"] == 2
    assert kpis["backlog"]["par_statut"] == {"ouverte": 1, "affectee": 0, "en_cours": 0, "en_attente": 1}
    assert kpis["backlog"]["par_priorite"]["haute"] == 1 and kpis["backlog"]["par_priorite"]["normale"] == 1
    assert kpis["en_retard"] == 1
    assert kpis["cloturees"] == 3 and kpis["creees"] == 5
    assert kpis["mttr"]["minutes"] == 70.0  # (60 + 120 + 30) / 3
    assert kpis["mttr"]["par_type"]["corrective"] == {"minutes": 90.0, "cloturees": 2}
    assert kpis["mttr"]["par_type"]["preventive"] == {"minutes": 30.0, "cloturees": 1}
    assert kpis["mttr"]["par_type"]["diagnostic"] == {"minutes": None, "cloturees": 0}
    assert kpis["delai_resolution"]["par_type"]["corrective"] == 240.0  # (180 + 300) / 2
    assert kpis["sla"]["par_priorite"]["normale"] == {"cloturees": 1, "dans_les_delais": 1, "taux": 100.0}
    assert kpis["sla"]["par_priorite"]["urgente"] == {"cloturees": 1, "dans_les_delais": 0, "taux": 0.0}
    assert kpis["sla"]["par_priorite"]["basse"]["taux"] is None
    assert kpis["sla"]["taux"] == 50.0

    older = await client.get(
        "/api/v1/dashboard/kpis",
        params={"du": (now - 70 * day).isoformat(), "au": (now - 50 * day).isoformat()},
        headers=world.client_user(org),
    )
    assert older.json()["cloturees"] == 1
    empty = await client.get(
        "/api/v1/dashboard/kpis", params={"du": now.isoformat(), "au": now.isoformat()}, headers=world.manager
    )
    assert empty.status_code == 422
    other_org = (await client.get("/api/v1/dashboard/kpis", headers=world.client_user(new_id()))).json()
    assert other_org["backlog"]["total"] == 0 and other_org["mttr"]["minutes"] is None


async def test_the_openapi_document_names_the_dashboard_models(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/interventions/openapi.json")).json()
    for path, model in (("/api/v1/dashboard/stats", "DashboardStats"), ("/api/v1/dashboard/kpis", "DashboardKpis")):
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}
    kpis = spec["components"]["schemas"]["DashboardKpis"]["properties"]
    assert list(kpis) == [
        "periode",
        "backlog",
        "en_retard",
        "creees",
        "cloturees",
        "mttr",
        "delai_resolution",
        "sla",
        "cout_pieces_total",
    ]
    assert list(spec["components"]["schemas"]["DashboardStats"]["properties"]) == [
        "interventions",
        "taux_resolution",
        "evolution_mensuelle",
        "priorites",
        "equipements",
        "utilisateurs",
    ]
