"""The intervention replica's one-statement write (`replicas_repository.record_intervention`): it answers
whether the fact was written and what the row held before, which decides whose availability to check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mif_planning import replicas_repository as replicas_repo

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _fact(at: datetime, *, technicien_id: int | None, statut: str) -> dict[str, Any]:
    return {
        "intervention_id": 987_001,
        "technicien_id": technicien_id,
        "equipement_id": 5,
        "statut": statut,
        "type": "corrective",
        "titre": "Fuite",
        "priorite": "normale",
        "planning_id": None,
        "date_limite": None,
        "created_at": at,
        "started_at": at if statut == "en_cours" else None,
        "ended_at": None,
        "occurred_at": at,
    }


async def test_the_write_answers_the_previous_row_and_whether_it_was_newer(db_session: AsyncSession) -> None:
    first = await replicas_repo.record_intervention(db_session, values=_fact(T0, technicien_id=1, statut="affectee"))
    assert first == (True, None)  # a new row: nothing before it

    written, previous = await replicas_repo.record_intervention(
        db_session, values=_fact(T0 + timedelta(minutes=5), technicien_id=2, statut="en_cours")
    )
    assert written and previous is not None
    assert (previous["technicien_id"], previous["statut"]) == (1, "affectee")

    # An older fact arriving late: not written, and the row as it is now is what it answers.
    written, previous = await replicas_repo.record_intervention(
        db_session, values=_fact(T0 + timedelta(minutes=1), technicien_id=3, statut="en_attente")
    )
    assert not written and previous is not None
    assert (previous["technicien_id"], previous["statut"]) == (2, "en_cours")

    _, now_held = await replicas_repo.record_intervention(
        db_session, values=_fact(T0 + timedelta(minutes=5), technicien_id=2, statut="en_cours")
    )
    assert now_held is not None and (now_held["technicien_id"], now_held["statut"]) == (2, "en_cours")
