"""A preventive plan's history (`plan_historique`): creation, changes, re-datings, deletion, the missed
occurrences the scheduler skipped and the circuit breaker's suspensions (docs/planning.md).

Append-only, enforced by the database: the service's role owns the table, so privileges alone would
not stop it; a trigger refuses every UPDATE, DELETE and TRUNCATE. No foreign key to `plan`: the history
of a deleted plan stays.

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


def upgrade() -> None:
    op.create_table(
        "plan_historique",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("planning_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("horodatage", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "action IN ('creation', 'modification', 'redatation', 'suppression', 'occurrences_sautees',"
            " 'suspension_automatique')",
            name=op.f("ck_plan_historique_action"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_historique")),
    )
    op.create_index("ix_plan_historique_planning_id_id", "plan_historique", ["planning_id", "id"])
    op.execute(
        """
        CREATE FUNCTION plan_historique_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'plan_historique is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER plan_historique_append_only BEFORE UPDATE OR DELETE ON plan_historique"
        " FOR EACH ROW EXECUTE FUNCTION plan_historique_append_only()"
    )
    op.execute(
        "CREATE TRIGGER plan_historique_no_truncate BEFORE TRUNCATE ON plan_historique"
        " FOR EACH STATEMENT EXECUTE FUNCTION plan_historique_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER plan_historique_no_truncate ON plan_historique")
    op.execute("DROP TRIGGER plan_historique_append_only ON plan_historique")
    op.drop_index("ix_plan_historique_planning_id_id", table_name="plan_historique")
    op.drop_table("plan_historique")
    op.execute("DROP FUNCTION plan_historique_append_only()")
