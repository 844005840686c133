"""A GiST index on the running breakdowns' periods: an MTBF question's whole months need only those (the
closed ones are in panne_mois), without fetching every closed episode of the months to filter it out.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_panne_episode_en_cours",
        "panne_episode",
        ["periode"],
        postgresql_using="gist",
        postgresql_where=sa.text("fin IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_panne_episode_en_cours", table_name="panne_episode", postgresql_using="gist")
