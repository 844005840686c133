"""Notification types for reports' export jobs (`reports.export.completed|failed.v1`): `rapport_pret` and
`rapport_echoue`; `notification.lien`, the job's page an e-mail links to (an export is not an intervention).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of the types, before and after (a migration never imports code that may change).
TYPES_0003 = "('affectation', 'cloture', 'rappel', 'retard', 'information', 'stock_bas')"
TYPES = "('affectation', 'cloture', 'rappel', 'retard', 'information', 'stock_bas', 'rapport_pret', 'rapport_echoue')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_notification_type"), "notification", type_="check")
    op.create_check_constraint(op.f("ck_notification_type"), "notification", f"type IN {TYPES}")
    op.add_column("notification", sa.Column("lien", sa.String(length=500), nullable=True))


def downgrade() -> None:
    # A downgrade with report notifications fails at the check rather than deleting users' notifications.
    op.drop_column("notification", "lien")
    op.drop_constraint(op.f("ck_notification_type"), "notification", type_="check")
    op.create_check_constraint(op.f("ck_notification_type"), "notification", f"type IN {TYPES_0003}")
