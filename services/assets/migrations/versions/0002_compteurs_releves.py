"""Meters of equipment (`compteur`), their readings (`releve`, one per meter and instant) and the hourly
rollup the downsampled history reads (`releve_horaire`).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compteur",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("nature", sa.String(length=10), nullable=False),
        sa.Column("unite", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("nature IN ('compteur', 'jauge')", name=op.f("ck_compteur_nature")),
        sa.CheckConstraint("code ~ '^[a-z0-9_]+$'", name=op.f("ck_compteur_code_format")),
        sa.ForeignKeyConstraint(
            ["equipement_id"],
            ["equipement.id"],
            name=op.f("fk_compteur_equipement_id_equipement"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compteur")),
        sa.UniqueConstraint("equipement_id", "code", name=op.f("uq_compteur_equipement_id_code")),
    )
    op.create_table(
        "releve",
        sa.Column("compteur_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("horodatage", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valeur", sa.Double(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("remise_a_zero", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint("source IN ('manuel', 'api', 'mqtt')", name=op.f("ck_releve_source")),
        sa.ForeignKeyConstraint(
            ["compteur_id"], ["compteur.id"], name=op.f("fk_releve_compteur_id_compteur"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("compteur_id", "horodatage", name=op.f("pk_releve")),
    )
    op.create_table(
        "releve_horaire",
        sa.Column("compteur_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("heure", sa.DateTime(timezone=True), nullable=False),
        sa.Column("min", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("somme", sa.Double(), nullable=False),
        sa.Column("nombre", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["compteur_id"],
            ["compteur.id"],
            name=op.f("fk_releve_horaire_compteur_id_compteur"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("compteur_id", "heure", name=op.f("pk_releve_horaire")),
    )


def downgrade() -> None:
    op.drop_table("releve_horaire")
    op.drop_table("releve")
    op.drop_table("compteur")
