"""Lateness is told once per item and e-mailed in digests (docs/notifications.md, "Lateness digest").

- `notification.item_key` with a unique (user_id, item_key) index: the same late intervention or
  overdue occurrence reaches a user once, whatever the events;
- `delivery.digest`: an e-mail that goes out in its recipient's digest; the sender's index of due
  deliveries leaves those out, another index finds them;
- `email_digest`: per recipient, since when items wait, the lease or back-off, the attempts.

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
    op.add_column("notification", sa.Column("item_key", sa.String(length=200), nullable=True))
    op.create_index(
        "uq_notification_user_id_item_key",
        "notification",
        ["user_id", "item_key"],
        unique=True,
        postgresql_where=sa.text("item_key IS NOT NULL"),
    )
    op.add_column("delivery", sa.Column("digest", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.drop_index("ix_delivery_due", table_name="delivery")
    op.create_index(
        "ix_delivery_due",
        "delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("statut = 'pending' AND NOT digest"),
    )
    op.create_index(
        "ix_delivery_digest_pending",
        "delivery",
        ["notification_id"],
        postgresql_where=sa.text("statut = 'pending' AND digest"),
    )
    op.create_table(
        "email_digest",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_email_digest")),
    )
    op.create_index(
        "ix_email_digest_pending",
        "email_digest",
        ["pending_since"],
        postgresql_where=sa.text("pending_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_email_digest_pending", table_name="email_digest")
    op.drop_table("email_digest")
    op.drop_index("ix_delivery_digest_pending", table_name="delivery")
    op.drop_index("ix_delivery_due", table_name="delivery")
    op.create_index("ix_delivery_due", "delivery", ["next_attempt_at"], postgresql_where=sa.text("statut = 'pending'"))
    op.drop_column("delivery", "digest")
    op.drop_index("uq_notification_user_id_item_key", table_name="notification")
    op.drop_column("notification", "item_key")
