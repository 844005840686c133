"""Planning's lists answer byte for byte what they answered with `jsonable_encoder`: competences (now one compiled
statement on the asyncpg connection, rows written by orjson) against the previous implementation (ORM
entities, `CompetenceOut.model_validate`, a count and a page); technicians, plans and a plan's history
(still built as models, now written by pydantic's serializer, or `json.dumps` for the history whose `detail`
may hold floats) against `JSONResponse(jsonable_encoder(...))` of the same models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import sqlalchemy as sa
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.listing import like_pattern
from mif_common.pagination import PageParams, fetch_page, order_by
from mif_planning.models import Competence, Plan, PlanHistorique, Technicien
from mif_planning.plans import plans_out
from mif_planning.schemas import CompetenceOut, PlanHistoriqueOut
from mif_planning.techniciens import techniciens_out
from mif_planning.techniciens_api import _COMPETENCE_SORT
from mif_planning.testing import Make, MakeTech

Headers = dict[str, str]
AWKWARD = 'Tab\tquote" back\\slash é 😀 \u2028'


async def old_competences(session: AsyncSession, query_string: str) -> tuple[bytes, int]:
    params = dict(parse_qsl(query_string))
    query = sa.select(Competence)
    if "domaine" in params:
        query = query.where(sa.func.lower(Competence.domaine) == params["domaine"].lower())
    q = params.get("q", "").strip() or None
    if q is not None:
        text = sa.func.concat_ws(" ", Competence.nom, Competence.domaine, Competence.description)
        query = query.where(text.ilike(like_pattern(q), escape="\\"))
    page = PageParams(
        limit=int(params.get("limit", 500)), offset=int(params.get("offset", 0)), sort=params.get("sort"), q=q
    )
    query = query.order_by(*order_by(page.sort, _COMPETENCE_SORT, default=[Competence.id]))
    rows, total = await fetch_page(session, query, page)
    return bytes(JSONResponse(jsonable_encoder([CompetenceOut.model_validate(c) for c in rows])).body), total


def old_body(items: list[Any]) -> bytes:
    return bytes(JSONResponse(jsonable_encoder(items)).body)


async def test_planning_lists_answer_what_they_did(
    client: httpx.AsyncClient,
    manager: Headers,
    db_session: AsyncSession,
    make_competence: Make,
    make_technicien: MakeTech,
    make_plan: Make,
    auth_headers: Callable[..., Headers],
) -> None:
    for n in range(6):
        await make_competence(
            nom=f"Soudure {n} é" if n % 2 else f"Froid {n}",
            domaine=None if n == 3 else ("Mécanique" if n % 2 else "froid"),
            description=None if n % 3 else "Habilitation 100% _x_",
        )
    await db_session.execute(
        sa.update(Competence)
        .where(Competence.nom == "Froid 0")
        .values(description=AWKWARD, date_creation=datetime(2026, 3, 1, 10, 20, 30, tzinfo=UTC))
    )
    moment = sa.literal(datetime(2026, 3, 1, 10, 20, 30, 123456, tzinfo=UTC), sa.DateTime(timezone=True))
    step = timedelta(seconds=1, microseconds=7)
    await db_session.execute(sa.update(Competence).values(date_modification=moment - Competence.id * step))
    await db_session.commit()
    differences = []
    for query in ["", "sort=-nom", "sort=domaine,-id&limit=2&offset=1", "domaine=MECANIQUE", "domaine=mécanique",
                  "q=soud", "q=100%25", "q=_x", "q=zz", "sort=date_creation", "offset=40"]:  # fmt: skip
        response = await client.get(f"/api/v1/techniciens/competences?{query}", headers=manager)
        assert response.status_code == 200, response.text
        body, total = await old_competences(db_session, query)
        if response.content != body or response.headers["x-total-count"] != str(total):
            differences.append(f"competences?{query}: {response.content!r}\n  != {body!r}")
    assert not differences, "\n".join(differences)

    # Technicians and plans: the same models as before, written without jsonable_encoder.
    tech = await make_technicien(equipe="Équipe Nord", zone=None)
    await make_technicien(equipe=None, zone="Zone 2")
    await make_plan(technicien_id=tech.id, commentaire="Vérifier les courroies")
    await make_plan(frequence="hebdomadaire")
    techniciens = list((await db_session.scalars(sa.select(Technicien).order_by(Technicien.id))).all())
    response = await client.get("/api/v1/techniciens", headers=manager)
    assert response.content == old_body(await techniciens_out(db_session, techniciens))
    plans = list((await db_session.scalars(sa.select(Plan).order_by(Plan.id))).all())
    response = await client.get("/api/v1/planning", headers=manager)
    assert response.content == old_body(await plans_out(db_session, plans))
    plan_id = plans[0].id
    db_session.add(
        PlanHistorique(planning_id=plan_id, action="modification", detail={"ratio": 1e-07, "s": AWKWARD}, user_id=None)
    )
    await db_session.commit()
    rows = (
        await db_session.scalars(
            sa.select(PlanHistorique).where(PlanHistorique.planning_id == plan_id).order_by(PlanHistorique.id)
        )
    ).all()
    response = await client.get(f"/api/v1/planning/{plan_id}/historique", headers=manager)
    assert response.content == old_body([PlanHistoriqueOut.model_validate(r) for r in rows])
    assert b'"ratio":1e-07' in response.content
