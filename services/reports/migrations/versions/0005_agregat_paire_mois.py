"""The KPI sums per month along one axis and per client or technician (what a question filtered on one
axis and grouped by the other reads), filled from the daily sums already there.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
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

# Frozen copy of mif_reports.models.PAIRES_MOIS, each axis as its value over agregat_jour `j` and the
# equipment replica `e` (the equipment type as 0002 filled the monthly sums with it: the current one).
VALEURS = {
    "client": "j.client_id",
    "technicien": "j.technicien_id",
    "type_equipement": "coalesce(e.type, '')",
}
PAIRES = (
    ("client", "technicien"),
    ("technicien", "client"),
    ("type_equipement", "client"),
    ("type_equipement", "technicien"),
)


def upgrade() -> None:
    op.create_table(
        "agregat_paire_mois",
        sa.Column("axe", sa.String(length=20), nullable=False),
        sa.Column("valeur", sa.String(length=100), nullable=False),
        sa.Column("par", sa.String(length=20), nullable=False),
        sa.Column("mois", sa.Date(), nullable=False),
        sa.Column("valeur_par", sa.BigInteger(), nullable=False),
        *(sa.Column(m, sa.BigInteger(), server_default="0", nullable=False) for m in METRIQUES),
        sa.PrimaryKeyConstraint("axe", "valeur", "par", "mois", "valeur_par", name=op.f("pk_agregat_paire_mois")),
    )
    columns = ", ".join(METRIQUES)
    sums = ", ".join(f"sum(j.{m})" for m in METRIQUES)
    for axe, par in PAIRES:
        op.execute(
            f"INSERT INTO agregat_paire_mois (axe, valeur, par, mois, valeur_par, {columns})"  # noqa: S608 - fixed names
            f" SELECT '{axe}', ({VALEURS[axe]})::text AS valeur, '{par}', date_trunc('month', j.jour)::date AS mois,"
            f" {VALEURS[par]} AS valeur_par, {sums}"
            " FROM agregat_jour j LEFT JOIN equipement_ref e ON e.equipement_id = j.equipement_id"
            " GROUP BY valeur, mois, valeur_par"
        )
    # Filled in bulk: its statistics now, or the planner guesses a few dozen rows until autovacuum comes.
    op.execute("ANALYZE agregat_paire_mois")


def downgrade() -> None:
    op.drop_table("agregat_paire_mois")
