"""Monthly KPI sums along one axis at a time (everything, client, technician, equipment type), and the
equipment type on each intervention's fact; both filled from what is already there.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
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

# Each axis: its `valeur` expression over agregat_jour `j` (joined to the equipment's fact type `e`).
AXES = {
    "client": "j.client_id::text",
    "technicien": "j.technicien_id::text",
    "type_equipement": "coalesce(e.type, '')",
}


def upgrade() -> None:
    op.create_table(
        "agregat_mois",
        sa.Column("axe", sa.String(length=20), nullable=False),
        sa.Column("valeur", sa.String(length=100), nullable=False),
        sa.Column("mois", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("priorite", sa.String(length=20), nullable=False),
        *(sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in METRIQUES),
        sa.PrimaryKeyConstraint("axe", "valeur", "mois", "type", "priorite", name=op.f("pk_agregat_mois")),
    )
    op.add_column("intervention_fait", sa.Column("type_equipement", sa.String(length=100), nullable=True))
    op.execute(
        "UPDATE intervention_fait f SET type_equipement = e.type FROM equipement_ref e"
        " WHERE e.equipement_id = f.equipement_id"
    )
    columns = ", ".join(METRIQUES)
    sums = ", ".join(f"sum({m})" for m in METRIQUES)
    op.execute(
        f"INSERT INTO agregat_mois (axe, valeur, mois, type, priorite, {columns})"  # noqa: S608 - fixed names
        f" SELECT 'tout', '', date_trunc('month', jour)::date AS mois, type, priorite, {sums}"
        " FROM agregat_jour_global GROUP BY mois, type, priorite"
    )
    for axe, valeur in AXES.items():
        op.execute(
            f"INSERT INTO agregat_mois (axe, valeur, mois, type, priorite, {columns})"  # noqa: S608 - fixed names
            f" SELECT '{axe}', {valeur} AS valeur, date_trunc('month', j.jour)::date AS mois, j.type, j.priorite,"
            f" {', '.join(f'sum(j.{m})' for m in METRIQUES)}"
            " FROM agregat_jour j LEFT JOIN equipement_ref e ON e.equipement_id = j.equipement_id"
            " GROUP BY valeur, mois, j.type, j.priorite"
        )


def downgrade() -> None:
    op.drop_column("intervention_fait", "type_equipement")
    op.drop_table("agregat_mois")
