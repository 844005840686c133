"""A technician's competence levels: a new level on a competence already held is a change (new version,
`updated` event); a competence name lost to a concurrent writer answers as the pre-check does."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mif_planning.competences import _flush_competence
from mif_planning.models import Competence
from mif_planning.service import NomDejaPris
from mif_planning.testing import Headers, Make, MakeTech, outbox_envelopes


async def test_a_new_level_on_a_held_competence_is_a_change(
    client: httpx.AsyncClient,
    manager: Headers,
    make_technicien: MakeTech,
    make_competence: Make,
    db_session: AsyncSession,
) -> None:
    soudure, hydraulique, levage = await make_competence(), await make_competence(), await make_competence()
    tech = await make_technicien(
        competences=[{"id": soudure["id"], "niveau": "debutant"}, {"id": hydraulique["id"], "niveau": "avance"}]
    )
    before = (await client.get(f"/api/v1/techniciens/{tech.id}", headers=manager)).json()

    # Soudure kept at a new level, hydraulique kept as it is, levage added.
    body = {
        "competences": [
            {"id": soudure["id"], "niveau": "expert"},
            {"id": hydraulique["id"], "niveau": "avance"},
            {"id": levage["id"], "niveau": "intermediaire"},
        ]
    }
    response = await client.put(f"/api/v1/techniciens/{tech.id}", json=body, headers=manager)
    assert response.status_code == 200, response.text
    got = response.json()
    assert sorted((c["id"], c["niveau"]) for c in got["competences"]) == sorted(
        [(soudure["id"], "expert"), (hydraulique["id"], "avance"), (levage["id"], "intermediaire")]
    )
    assert got["version"] == before["version"] + 1

    # The same levels again: nothing changed, no new version.
    again = await client.put(f"/api/v1/techniciens/{tech.id}", json=body, headers=manager)
    assert again.json()["version"] == got["version"]

    events = [
        e
        for e in await outbox_envelopes(db_session, type_prefix="planning.technicien.")
        if e["subject"] == str(tech.id)
    ]
    assert [e["type"] for e in events][-1] == "planning.technicien.updated.v1"
    assert len([e for e in events if e["type"] == "planning.technicien.updated.v1"]) == 1
    levels = {c["id"]: c["niveau"] for c in events[-1]["data"]["competences"]}
    assert levels[soudure["id"]] == "expert"


async def test_a_competence_name_lost_to_a_concurrent_writer_is_a_409(db_session: AsyncSession) -> None:
    db_session.add(Competence(nom="Pneumatique"))
    await db_session.flush()

    savepoint = await db_session.begin_nested()
    db_session.add(Competence(nom="PNEUMATIQUE"))  # the pre-check saw no such name: the other writer was faster
    with pytest.raises(NomDejaPris, match="A competence with this name already exists"):
        await _flush_competence(db_session)
    await savepoint.rollback()

    savepoint = await db_session.begin_nested()
    db_session.add(Competence(nom=None))  # any other integrity error goes on as it is
    with pytest.raises(IntegrityError):
        await _flush_competence(db_session)
    await savepoint.rollback()
