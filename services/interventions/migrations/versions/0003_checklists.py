"""Checklists on interventions (docs/interventions.md, "Checklists"):

- `intervention_etape`: the steps copied from a planning template, and what was filled in;
- `checklist_ref`: the replica of planning's templates (`planning.checklist.*.v1`);
- the history's `checklist` action (a template added, a step filled).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the history's actions, before and after (a migration never imports code that may change).
ACTIONS_0002 = (
    "('creation', 'affectation', 'desaffectation', 'changement_statut', 'modification', 'commentaire',"
    " 'document', 'retard', 'pieces')"
)
ACTIONS = (
    "('creation', 'affectation', 'desaffectation', 'changement_statut', 'modification', 'commentaire',"
    " 'document', 'retard', 'pieces', 'checklist')"
)


def upgrade() -> None:
    op.create_table(
        "intervention_etape",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("intervention_id", sa.BigInteger(), nullable=False),
        sa.Column("checklist_id", sa.BigInteger(), nullable=True),
        sa.Column("checklist_nom", sa.String(length=200), nullable=True),
        sa.Column("ordre", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("libelle", sa.String(length=255), nullable=False),
        sa.Column("obligatoire", sa.Boolean(), nullable=False),
        sa.Column("unite", sa.String(length=20), nullable=True),
        sa.Column("min", sa.Float(), nullable=True),
        sa.Column("max", sa.Float(), nullable=True),
        sa.Column("compteur_code", sa.String(length=50), nullable=True),
        sa.Column("fait", sa.Boolean(), nullable=True),
        sa.Column("valeur_mesure", sa.Float(), nullable=True),
        sa.Column("texte", sa.Text(), nullable=True),
        sa.Column("document_id", sa.BigInteger(), nullable=True),
        sa.Column("hors_limites", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("rempli_par", sa.BigInteger(), nullable=True),
        sa.Column("rempli_le", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "type IN ('verification', 'mesure', 'texte', 'photo')", name=op.f("ck_intervention_etape_type")
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["intervention.id"],
            name=op.f("fk_intervention_etape_intervention_id_intervention"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_etape")),
    )
    op.create_index(
        "uq_intervention_etape_intervention_id_ordre",
        "intervention_etape",
        ["intervention_id", "ordre"],
        unique=True,
    )
    op.create_table(
        "checklist_ref",
        sa.Column("checklist_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("etapes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("supprime", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("checklist_id", name=op.f("pk_checklist_ref")),
    )
    op.drop_constraint(op.f("ck_historique_action"), "historique", type_="check")
    op.create_check_constraint(op.f("ck_historique_action"), "historique", f"action IN {ACTIONS}")


def downgrade() -> None:
    # `checklist` rows cannot be kept under the old constraint, and the history is append-only: a downgrade
    # with such rows fails here rather than losing them.
    op.drop_constraint(op.f("ck_historique_action"), "historique", type_="check")
    op.create_check_constraint(op.f("ck_historique_action"), "historique", f"action IN {ACTIONS_0002}")
    op.drop_table("checklist_ref")
    op.drop_index("uq_intervention_etape_intervention_id_ordre", table_name="intervention_etape")
    op.drop_table("intervention_etape")
