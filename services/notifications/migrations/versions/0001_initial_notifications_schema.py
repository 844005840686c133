"""Initial notifications schema: notifications, deliveries, preferences, replicas, outbox, inbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from mif_common.events.tables import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TYPES = "('affectation', 'cloture', 'rappel', 'retard', 'information')"
CANAUX = "('email', 'log', 'sms', 'push')"


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("canal", sa.String(length=10), nullable=True),
        sa.Column("titre", sa.String(length=255), nullable=False),
        sa.Column("contenu", sa.String(length=1000), nullable=False),
        sa.Column("intervention_id", sa.BigInteger(), nullable=True),
        sa.Column("lue", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("date_lecture", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_envoi", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=True),
        sa.Column("event_type", sa.String(length=200), nullable=True),
        sa.Column("sender_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"type IN {TYPES}", name=op.f("ck_notification_type")),
        sa.CheckConstraint(f"canal IN {CANAUX}", name=op.f("ck_notification_canal")),
        sa.CheckConstraint("(date_lecture IS NOT NULL) = lue", name=op.f("ck_notification_date_lecture_when_lue")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint("event_id", "user_id", name="uq_notification_event_id_user_id"),
    )
    op.create_index("ix_notification_user_id_id", "notification", ["user_id", "id"])
    op.create_index("ix_notification_user_id_unread", "notification", ["user_id"], postgresql_where=sa.text("NOT lue"))

    op.create_table(
        "delivery",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("canal", sa.String(length=10), nullable=False),
        sa.Column("statut", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"canal IN {CANAUX}", name=op.f("ck_delivery_canal")),
        sa.CheckConstraint("statut IN ('pending', 'sent', 'failed')", name=op.f("ck_delivery_statut")),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notification.id"],
            name=op.f("fk_delivery_notification_id_notification"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint("notification_id", "canal", name="uq_delivery_notification_id_canal"),
    )
    op.create_index("ix_delivery_due", "delivery", ["next_attempt_at"], postgresql_where=sa.text("statut = 'pending'"))

    op.create_table(
        "preference",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("canal", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"canal IN {CANAUX}", name=op.f("ck_preference_canal")),
        sa.PrimaryKeyConstraint("user_id", "canal", name=op.f("pk_preference")),
    )

    op.create_table(
        "user_ref",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_ref")),
    )
    op.create_index("ix_user_ref_role_active", "user_ref", ["role"], postgresql_where=sa.text("is_active"))
    op.create_index("ix_user_ref_client_id_active", "user_ref", ["client_id"], postgresql_where=sa.text("is_active"))

    op.create_table(
        "technicien_ref",
        sa.Column("technicien_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("technicien_id", name=op.f("pk_technicien_ref")),
    )

    op.create_table(
        "intervention_ref",
        sa.Column("intervention_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("titre", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("requester_id", sa.BigInteger(), nullable=True),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("intervention_id", name=op.f("pk_intervention_ref")),
    )
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    op.drop_table("intervention_ref")
    op.drop_table("technicien_ref")
    op.drop_table("user_ref")
    op.drop_table("preference")
    op.drop_table("delivery")
    op.drop_table("notification")
