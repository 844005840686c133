"""Initial interventions schema: interventions, append-only history, comments, idempotency keys,
replicas of equipment, technicians and users, outbox, inbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

from mif_common.events.tables import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the model's expressions (a migration never imports code that may change).
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('french'::regconfig, coalesce(titre, '')), 'A')"
    " || setweight(to_tsvector('french'::regconfig, coalesce(description, '')), 'B')"
)
STATUTS = "('ouverte', 'affectee', 'en_cours', 'en_attente', 'cloturee', 'annulee', 'archivee')"
OPEN_STATUTS = "('ouverte', 'affectee', 'en_cours', 'en_attente')"
PRIORITES = "('urgente', 'haute', 'normale', 'basse', 'programmee')"
TYPES = "('corrective', 'preventive', 'ameliorative', 'diagnostic')"
ACTIONS = (
    "('creation', 'affectation', 'desaffectation', 'changement_statut', 'modification', 'commentaire',"
    " 'document', 'retard')"
)


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "intervention",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("titre", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("statut", sa.String(length=20), server_default="ouverte", nullable=False),
        sa.Column("priorite", sa.String(length=20), server_default="normale", nullable=False),
        sa.Column("urgence", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("date_limite", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_limite_sla", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("date_affectation", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_debut_travaux", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_fin_travaux", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_cloture", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_archivage", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duree_estimee", sa.Integer(), nullable=True),
        sa.Column("duree_reelle", sa.Integer(), nullable=True),
        sa.Column("cout_estime", sa.BigInteger(), nullable=True),
        sa.Column("cout_reel", sa.BigInteger(), nullable=True),
        sa.Column("rapport", sa.Text(), nullable=True),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_by_role", sa.String(length=20), nullable=True),
        sa.Column("planning_id", sa.BigInteger(), nullable=True),
        sa.Column("occurrence_key", sa.String(length=200), nullable=True),
        sa.Column("late_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("search_vector", TSVECTOR(), sa.Computed(SEARCH_VECTOR_SQL, persisted=True), nullable=True),
        sa.CheckConstraint(f"statut IN {STATUTS}", name=op.f("ck_intervention_statut")),
        sa.CheckConstraint(f"priorite IN {PRIORITES}", name=op.f("ck_intervention_priorite")),
        sa.CheckConstraint(f"type IN {TYPES}", name=op.f("ck_intervention_type")),
        sa.CheckConstraint("NOT urgence OR priorite = 'urgente'", name=op.f("ck_intervention_urgence_is_urgente")),
        sa.CheckConstraint("duree_estimee >= 0 AND duree_reelle >= 0", name=op.f("ck_intervention_durees_positives")),
        sa.CheckConstraint("cout_estime >= 0 AND cout_reel >= 0", name=op.f("ck_intervention_couts_positifs")),
        sa.CheckConstraint(
            "statut <> 'affectee' OR technicien_id IS NOT NULL", name=op.f("ck_intervention_affectee_has_technicien")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention")),
    )
    # The list's filters and sort keys (the composite one serves `statut + priorite + -date_creation`).
    op.create_index(
        "ix_intervention_statut_priorite_date_creation",
        "intervention",
        ["statut", "priorite", "date_creation", "id"],
    )
    op.create_index("ix_intervention_date_creation", "intervention", ["date_creation", "id"])
    op.create_index("ix_intervention_priorite", "intervention", ["priorite"])
    op.create_index("ix_intervention_type", "intervention", ["type"])
    op.create_index("ix_intervention_technicien_id", "intervention", ["technicien_id", "statut"])
    op.create_index("ix_intervention_equipement_id", "intervention", ["equipement_id", "statut"])
    op.create_index("ix_intervention_client_id", "intervention", ["client_id", "date_creation"])
    op.create_index("ix_intervention_date_limite", "intervention", ["date_limite"])
    op.create_index(
        "ix_intervention_date_cloture",
        "intervention",
        ["date_cloture"],
        postgresql_where=sa.text("date_cloture IS NOT NULL"),
    )
    op.create_index("ix_intervention_search_vector", "intervention", ["search_vector"], postgresql_using="gin")
    op.create_index(
        "uq_intervention_occurrence_key",
        "intervention",
        ["occurrence_key"],
        unique=True,
        postgresql_where=sa.text("occurrence_key IS NOT NULL"),
    )
    op.create_index(
        "ix_intervention_late_candidates",
        "intervention",
        ["date_limite"],
        postgresql_where=sa.text(f"late_notified_at IS NULL AND statut IN {OPEN_STATUTS}"),
    )

    op.create_table(
        "historique",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("intervention_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("ancien_statut", sa.String(length=20), nullable=True),
        sa.Column("remarque", sa.Text(), nullable=True),
        sa.Column("avant", JSONB(), nullable=True),
        sa.Column("apres", JSONB(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("horodatage", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(f"action IN {ACTIONS}", name=op.f("ck_historique_action")),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["intervention.id"],
            name=op.f("fk_historique_intervention_id_intervention"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_historique")),
    )
    op.create_index("ix_historique_intervention_id", "historique", ["intervention_id", "id"])
    # Append-only, enforced by the database: the service's role owns the table, so privileges alone
    # would not stop it; this trigger refuses every UPDATE, DELETE and TRUNCATE.
    op.execute(
        """
        CREATE FUNCTION historique_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'historique is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER historique_append_only BEFORE UPDATE OR DELETE ON historique"
        " FOR EACH ROW EXECUTE FUNCTION historique_append_only()"
    )
    op.execute(
        "CREATE TRIGGER historique_no_truncate BEFORE TRUNCATE ON historique"
        " FOR EACH STATEMENT EXECUTE FUNCTION historique_append_only()"
    )

    op.create_table(
        "commentaire",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("intervention_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("contenu", sa.Text(), nullable=False),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["intervention.id"],
            name=op.f("fk_commentaire_intervention_id_intervention"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commentaire")),
    )
    op.create_index("ix_commentaire_intervention_id", "commentaire", ["intervention_id", "id"])

    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("intervention_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])

    op.create_table(
        "equipement_ref",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipement_ref")),
    )
    op.create_index("ix_equipement_ref_client_id", "equipement_ref", ["client_id"])
    op.create_table(
        "technicien_ref",
        sa.Column("technicien_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("technicien_id", name=op.f("pk_technicien_ref")),
    )
    op.create_index("ix_technicien_ref_user_id", "technicien_ref", ["user_id"])
    op.create_table(
        "user_ref",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_ref")),
    )
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    op.drop_table("user_ref")
    op.drop_table("technicien_ref")
    op.drop_table("equipement_ref")
    op.drop_table("idempotency_key")
    op.drop_table("commentaire")
    op.execute("DROP TRIGGER historique_no_truncate ON historique")
    op.execute("DROP TRIGGER historique_append_only ON historique")
    op.drop_table("historique")
    op.execute("DROP FUNCTION historique_append_only()")
    op.drop_table("intervention")
