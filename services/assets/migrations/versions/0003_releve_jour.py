"""Daily rollup of a meter's readings (`releve_jour`, UTC days), filled from the hourly one: a history in
steps of whole days reads a row per day instead of 24.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "releve_jour",
        sa.Column("compteur_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("jour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("somme", sa.Double(), nullable=False),
        sa.Column("nombre", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["compteur_id"],
            ["compteur.id"],
            name=op.f("fk_releve_jour_compteur_id_compteur"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("compteur_id", "jour", name=op.f("pk_releve_jour")),
    )
    # Hours never straddle a UTC day, so the days are exactly their hours regrouped.
    op.execute(
        "INSERT INTO releve_jour (compteur_id, jour, min, max, somme, nombre)"
        " SELECT compteur_id, date_trunc('day', heure, 'UTC'), min(min), max(max), sum(somme), sum(nombre)"
        " FROM releve_horaire GROUP BY 1, 2"
    )


def downgrade() -> None:
    op.drop_table("releve_jour")
