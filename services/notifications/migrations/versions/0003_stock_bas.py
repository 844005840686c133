"""A notification type for inventory's low-stock alerts (`inventory.stock.low.v1`): `stock_bas`.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Frozen copies of the types, before and after (a migration never imports code that may change).
TYPES_0001 = "('affectation', 'cloture', 'rappel', 'retard', 'information')"
TYPES = "('affectation', 'cloture', 'rappel', 'retard', 'information', 'stock_bas')"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_notification_type"), "notification", type_="check")
    op.create_check_constraint(op.f("ck_notification_type"), "notification", f"type IN {TYPES}")


def downgrade() -> None:
    # A downgrade with `stock_bas` notifications fails here rather than deleting users' notifications.
    op.drop_constraint(op.f("ck_notification_type"), "notification", type_="check")
    op.create_check_constraint(op.f("ck_notification_type"), "notification", f"type IN {TYPES_0001}")
