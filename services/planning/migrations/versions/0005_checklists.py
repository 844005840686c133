"""Checklist templates (`checklist_modele` and their ordered `checklist_etape` rows) and a plan's
optional template (`plan.checklist_id`), copied onto the interventions its occurrences generate
(docs/planning.md, "Checklists"). Existing plans have none.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checklist_modele",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklist_modele")),
    )
    op.create_index("uq_checklist_modele_nom_lower", "checklist_modele", [sa.text("lower(nom)")], unique=True)
    op.create_table(
        "checklist_etape",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("checklist_id", sa.BigInteger(), nullable=False),
        sa.Column("ordre", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("libelle", sa.String(length=255), nullable=False),
        sa.Column("obligatoire", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("unite", sa.String(length=20), nullable=True),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.Column("compteur_code", sa.String(length=50), nullable=True),
        sa.CheckConstraint(
            "type IN ('verification', 'mesure', 'texte', 'photo')", name=op.f("ck_checklist_etape_type")
        ),
        sa.CheckConstraint("min IS NULL OR max IS NULL OR min <= max", name=op.f("ck_checklist_etape_bornes")),
        sa.ForeignKeyConstraint(
            ["checklist_id"],
            ["checklist_modele.id"],
            name=op.f("fk_checklist_etape_checklist_id_checklist_modele"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklist_etape")),
    )
    op.create_index("uq_checklist_etape_checklist_id_ordre", "checklist_etape", ["checklist_id", "ordre"], unique=True)
    op.add_column("plan", sa.Column("checklist_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_plan_checklist_id_checklist_modele"),
        "plan",
        "checklist_modele",
        ["checklist_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_index("ix_plan_checklist_id", "plan", ["checklist_id"])


def downgrade() -> None:
    op.drop_index("ix_plan_checklist_id", table_name="plan")
    op.drop_constraint(op.f("fk_plan_checklist_id_checklist_modele"), "plan", type_="foreignkey")
    op.drop_column("plan", "checklist_id")
    op.drop_index("uq_checklist_etape_checklist_id_ordre", table_name="checklist_etape")
    op.drop_table("checklist_etape")
    op.drop_index("uq_checklist_modele_nom_lower", table_name="checklist_modele")
    op.drop_table("checklist_modele")
