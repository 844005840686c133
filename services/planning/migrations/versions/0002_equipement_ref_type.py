"""The equipment replica keeps the equipment's `type`: a recommendation for an equipment ranks
technicians by the competence that matches its type (DOMAIN.md §4, one-click dispatch).

Existing rows get their type from the next event about their equipment; until then they rank by
availability and workload alone, as before.

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
    op.add_column("equipement_ref", sa.Column("type", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("equipement_ref", "type")
