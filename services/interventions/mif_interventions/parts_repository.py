"""Queries of the parts cost inventory reports for an intervention (`cout_pieces`,
`inventory.intervention.parts_costed.v1`): one statement, run for every such event."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.statements import Statement
from mif_interventions.models import Intervention


def _apply_parts_cost() -> sa.ClauseElement:
    # WITH previous AS MATERIALIZED (SELECT ... FOR UPDATE), written AS (UPDATE ... FROM previous WHERE
    # <older version> RETURNING statut) SELECT previous.*, written.statut. The locking read comes first:
    # under READ COMMITTED it waits for a request that holds the row (an edit, a move) and then reads what
    # that request committed, so the previous cost is the one really replaced, and the UPDATE (on the
    # latest row version, by PostgreSQL's re-check) writes only the two cost columns: neither write is
    # lost. A version not above the stored one writes nothing (a duplicate, a late event).
    version = sa.bindparam("version", type_=sa.Integer())
    previous = (
        sa.select(Intervention.id, Intervention.cout_pieces, Intervention.cout_pieces_version)
        .where(Intervention.id == sa.bindparam("intervention_id", type_=sa.BigInteger()))
        .with_for_update()
        .cte("previous")
        .prefix_with("MATERIALIZED")
    )
    written = (
        sa.update(Intervention)
        .where(Intervention.id == previous.c.id, previous.c.cout_pieces_version < version)
        .values(cout_pieces=sa.bindparam("cout_pieces", type_=sa.BigInteger()), cout_pieces_version=version)
        .returning(Intervention.statut)
        .cte("written")
    )
    return sa.select(
        previous.c.cout_pieces,
        previous.c.cout_pieces_version,
        written.c.statut,
    ).select_from(previous.outerjoin(written, sa.true()))


# Compiled once, run on the session's asyncpg connection (one per consumed event: mif_common.statements).
_APPLY_PARTS_COST = Statement(_apply_parts_cost, ("intervention_id", "cout_pieces", "version"))


@dataclass(frozen=True, slots=True)
class PartsCostApplied:
    """What `apply_parts_cost` found: the cost and version held before, and the intervention's statut
    when the new cost was written (None: the stored version was already as high)."""

    previous_cout: int | None
    previous_version: int
    statut: str | None

    @property
    def written(self) -> bool:
        return self.statut is not None


async def apply_parts_cost(
    session: AsyncSession, *, intervention_id: int, cout_pieces: int, version: int
) -> PartsCostApplied | None:
    """Store inventory's parts cost of an intervention when `version` is above the stored one, in the
    session's transaction; None when there is no such intervention."""
    rows = await _APPLY_PARTS_COST.fetch(
        await session.connection(),
        {"intervention_id": intervention_id, "cout_pieces": cout_pieces, "version": version},
    )
    if not rows:
        return None
    [row] = rows
    return PartsCostApplied(
        previous_cout=row["cout_pieces"], previous_version=row["cout_pieces_version"], statut=row["statut"]
    )
