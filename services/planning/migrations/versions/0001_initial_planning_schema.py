"""Initial planning schema: technicians, competences, preventive plans and their occurrences, the
replicas of users, equipment and interventions, outbox and inbox.

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


def upgrade() -> None:
    op.create_table(
        "competence",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("nom", sa.String(length=100), nullable=False),
        sa.Column("domaine", sa.String(length=100), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_competence")),
    )
    op.create_index("uq_competence_nom_lower", "competence", [sa.literal_column("lower(nom)")], unique=True)
    op.create_table(
        "equipement_ref",
        sa.Column("equipement_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("supprime", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("equipement_id", name=op.f("pk_equipement_ref")),
    )
    op.create_table(
        "intervention_ref",
        sa.Column("intervention_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("titre", sa.String(length=255), nullable=False),
        sa.Column("priorite", sa.String(length=30), nullable=False),
        sa.Column("planning_id", sa.BigInteger(), nullable=True),
        sa.Column("date_limite", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("intervention_id", name=op.f("pk_intervention_ref")),
    )
    op.create_index("ix_intervention_ref_equipement_id", "intervention_ref", ["equipement_id"], unique=False)
    op.create_index(
        "ix_intervention_ref_technicien_id_statut", "intervention_ref", ["technicien_id", "statut"], unique=False
    )
    op.create_table(
        "user_ref",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_ref")),
    )
    op.create_table(
        "technicien",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("equipe", sa.String(length=100), nullable=True),
        sa.Column("zone", sa.String(length=100), nullable=True),
        sa.Column("disponibilite", sa.String(length=20), server_default="disponible", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("ical_token_hash", sa.String(length=64), nullable=True),
        sa.Column("ical_token_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "disponibilite IN ('disponible', 'occupe', 'conge', 'formation', 'indisponible')",
            name=op.f("ck_technicien_disponibilite"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_ref.user_id"], name=op.f("fk_technicien_user_id_user_ref"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technicien")),
    )
    op.create_index("ix_technicien_disponibilite", "technicien", ["disponibilite"], unique=False)
    op.create_index("uq_technicien_ical_token_hash", "technicien", ["ical_token_hash"], unique=True)
    op.create_index("uq_technicien_user_id", "technicien", ["user_id"], unique=True)
    op.create_table(
        "plan",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("frequence", sa.String(length=20), nullable=False),
        sa.Column("prochaine_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("derniere_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("statut", sa.String(length=20), server_default="actif", nullable=False),
        sa.Column("commentaire", sa.String(length=1000), nullable=True),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "frequence IN ('journalier', 'hebdomadaire', 'mensuel', 'trimestriel', 'semestriel', 'annuel')",
            name=op.f("ck_plan_frequence"),
        ),
        sa.CheckConstraint("statut IN ('actif', 'suspendu', 'termine', 'en_retard')", name=op.f("ck_plan_statut")),
        sa.ForeignKeyConstraint(
            ["technicien_id"], ["technicien.id"], name=op.f("fk_plan_technicien_id_technicien"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
    )
    op.create_index(
        "ix_plan_due",
        "plan",
        ["prochaine_date"],
        unique=False,
        postgresql_where=sa.text("statut IN ('actif', 'en_retard')"),
    )
    op.create_index("ix_plan_equipement_id", "plan", ["equipement_id"], unique=False)
    op.create_index("ix_plan_technicien_id", "plan", ["technicien_id"], unique=False)
    op.create_table(
        "technicien_competence",
        sa.Column("technicien_id", sa.BigInteger(), nullable=False),
        sa.Column("competence_id", sa.BigInteger(), nullable=False),
        sa.Column("niveau", sa.String(length=20), server_default="intermediaire", nullable=False),
        sa.CheckConstraint(
            "niveau IN ('debutant', 'intermediaire', 'avance', 'expert')", name=op.f("ck_technicien_competence_niveau")
        ),
        sa.ForeignKeyConstraint(
            ["competence_id"],
            ["competence.id"],
            name=op.f("fk_technicien_competence_competence_id_competence"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["technicien_id"],
            ["technicien.id"],
            name=op.f("fk_technicien_competence_technicien_id_technicien"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("technicien_id", "competence_id", name=op.f("pk_technicien_competence")),
    )
    op.create_index(
        op.f("ix_technicien_competence_competence_id"), "technicien_competence", ["competence_id"], unique=False
    )
    op.create_table(
        "occurrence",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("occurrence_key", sa.String(length=100), nullable=False),
        sa.Column("planning_id", sa.BigInteger(), nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("intervention_id", sa.BigInteger(), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["planning_id"], ["plan.id"], name=op.f("fk_occurrence_planning_id_plan"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_occurrence")),
    )
    op.create_index("ix_occurrence_intervention_id", "occurrence", ["intervention_id"], unique=False)
    op.create_index(
        "ix_occurrence_pending_deadline",
        "occurrence",
        ["deadline_at"],
        unique=False,
        postgresql_where=sa.text("emitted_at IS NOT NULL AND overdue_at IS NULL"),
    )
    op.create_index("ix_occurrence_planning_id_due_at", "occurrence", ["planning_id", "due_at"], unique=False)
    op.create_index("uq_occurrence_occurrence_key", "occurrence", ["occurrence_key"], unique=True)
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    for table in (
        "occurrence",
        "technicien_competence",
        "plan",
        "technicien",
        "user_ref",
        "intervention_ref",
        "equipement_ref",
        "competence",
    ):
        op.drop_table(table)
