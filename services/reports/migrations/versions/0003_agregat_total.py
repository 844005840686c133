"""The KPI sums per axis with type and priority summed away, per day and per month (what a question that
filters on neither reads); both filled from the daily sums already there.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copy of mif_reports.models.METRIQUES (a migration never imports code that may change).
METRIQUES = (
    "creees",
    "sorties",
    "cloturees",
    "demarrees",
    "secondes_travaux",
    "secondes_resolution",
    "minutes_travaillees",
    "cout_pieces",
    "sla_evaluees",
    "sla_respectees",
    "correctives_cloturees",
    "correctives_refaites",
    "preventives_dues",
    "preventives_a_temps",
)

# Each axis but the equipment type's: its `valeur` over agregat_jour `j`.
AXES = {
    "tout": "''",
    "client": "j.client_id::text",
    "technicien": "j.technicien_id::text",
}


def _table(name: str, periode: str) -> None:
    op.create_table(
        name,
        sa.Column("axe", sa.String(length=20), nullable=False),
        sa.Column("valeur", sa.String(length=100), nullable=False),
        sa.Column(periode, sa.Date(), nullable=False),
        *(sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in METRIQUES),
        sa.PrimaryKeyConstraint("axe", "valeur", periode, name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    _table("agregat_total_jour", "jour")
    op.create_index("ix_agregat_total_jour_axe_jour", "agregat_total_jour", ["axe", "jour"])
    _table("agregat_total_mois", "mois")
    columns = ", ".join(METRIQUES)
    sums = ", ".join(f"sum(j.{m})" for m in METRIQUES)
    for axe, valeur in AXES.items():
        op.execute(
            f"INSERT INTO agregat_total_jour (axe, valeur, jour, {columns})"  # noqa: S608 - fixed names
            f" SELECT '{axe}', {valeur} AS valeur, j.jour, {sums} FROM agregat_jour j GROUP BY valeur, j.jour"
        )
    # The equipment type as 0002 filled the monthly sums with it: the equipment's current type.
    op.execute(
        f"INSERT INTO agregat_total_jour (axe, valeur, jour, {columns})"  # noqa: S608 - fixed names
        f" SELECT 'type_equipement', coalesce(e.type, '') AS valeur, j.jour, {sums}"
        " FROM agregat_jour j LEFT JOIN equipement_ref e ON e.equipement_id = j.equipement_id"
        " GROUP BY valeur, j.jour"
    )
    op.execute(
        f"INSERT INTO agregat_total_mois (axe, valeur, mois, {columns})"  # noqa: S608 - fixed names
        f" SELECT axe, valeur, mois, {', '.join(f'sum({m})' for m in METRIQUES)}"
        " FROM agregat_mois GROUP BY axe, valeur, mois"
    )


def downgrade() -> None:
    op.drop_table("agregat_total_mois")
    op.drop_table("agregat_total_jour")
