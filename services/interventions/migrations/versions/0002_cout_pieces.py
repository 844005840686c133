"""The parts cost inventory reports for an intervention (`inventory.intervention.parts_costed.v1`).

- `intervention.cout_pieces` (centimes MAD, null until inventory says) and `cout_pieces_version` (the
  inventory version it comes from, 0: none): only a higher version replaces the figure;
- the history's `pieces` action: one row per parts cost applied.

Existing rows stay valid (null cost, version 0); nothing is backfilled (inventory is new).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the history's actions, before and after (a migration never imports code that may change).
ACTIONS_0001 = (
    "('creation', 'affectation', 'desaffectation', 'changement_statut', 'modification', 'commentaire',"
    " 'document', 'retard')"
)
ACTIONS = (
    "('creation', 'affectation', 'desaffectation', 'changement_statut', 'modification', 'commentaire',"
    " 'document', 'retard', 'pieces')"
)


def upgrade() -> None:
    op.add_column("intervention", sa.Column("cout_pieces", sa.BigInteger(), nullable=True))
    op.add_column("intervention", sa.Column("cout_pieces_version", sa.Integer(), server_default="0", nullable=False))
    op.create_check_constraint(op.f("ck_intervention_cout_pieces_positif"), "intervention", "cout_pieces >= 0")
    op.drop_constraint(op.f("ck_historique_action"), "historique", type_="check")
    op.create_check_constraint(op.f("ck_historique_action"), "historique", f"action IN {ACTIONS}")


def downgrade() -> None:
    # `pieces` rows cannot be kept under the old constraint, and the history is append-only: a downgrade
    # with such rows fails here rather than losing them.
    op.drop_constraint(op.f("ck_historique_action"), "historique", type_="check")
    op.create_check_constraint(op.f("ck_historique_action"), "historique", f"action IN {ACTIONS_0001}")
    op.drop_constraint(op.f("ck_intervention_cout_pieces_positif"), "intervention", type_="check")
    op.drop_column("intervention", "cout_pieces_version")
    op.drop_column("intervention", "cout_pieces")
