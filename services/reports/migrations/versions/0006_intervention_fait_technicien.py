"""An index on each intervention's technician and equipment: the equipment a technician worked on (the
scope of a technician's MTBF) read from the index alone, not from every intervention of every equipment.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_intervention_fait_technicien_equipement", "intervention_fait", ["technicien_id", "equipement_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_intervention_fait_technicien_equipement", table_name="intervention_fait")
