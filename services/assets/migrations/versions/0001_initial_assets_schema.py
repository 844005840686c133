"""Initial assets schema: clients, equipment, status history, intervention replica, outbox, inbox.

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

# Frozen copies of mif_assets.models.*_SEARCH_SQL (a migration never imports code that may change).
EQUIPEMENT_SEARCH_SQL = (
    "(nom || ' ' || type || ' ' || localisation || ' ' || coalesce(marque, '') || ' ' || coalesce(modele, '')"
    " || ' ' || coalesce(numero_serie, ''))"
)
CLIENT_SEARCH_SQL = (
    "(nom_entreprise || ' ' || coalesce(nom_contact, '') || ' ' || coalesce(email, '') || ' ' || coalesce(ville, '')"
    " || ' ' || coalesce(secteur_activite, ''))"
)


def upgrade() -> None:
    op.create_table(
        "client",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("nom_entreprise", sa.String(length=200), nullable=False),
        sa.Column("type_client", sa.String(length=20), server_default="entreprise", nullable=False),
        sa.Column("secteur_activite", sa.String(length=100), nullable=True),
        sa.Column("nom_contact", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("telephone", sa.String(length=30), nullable=True),
        sa.Column("adresse", sa.String(length=500), nullable=True),
        sa.Column("ville", sa.String(length=100), nullable=True),
        sa.Column("pays", sa.String(length=100), server_default="Maroc", nullable=False),
        sa.Column("niveau_service", sa.String(length=20), server_default="standard", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("contrat_debut", sa.Date(), nullable=True),
        sa.Column("contrat_fin", sa.Date(), nullable=True),
        sa.Column("type_contrat", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "type_client IN ('entreprise', 'collectivite', 'association', 'particulier')",
            name=op.f("ck_client_type_client"),
        ),
        sa.CheckConstraint(
            "niveau_service IN ('premium', 'standard', 'basique')", name=op.f("ck_client_niveau_service")
        ),
        sa.CheckConstraint("contrat_fin > contrat_debut", name=op.f("ck_client_contrat_fin_after_debut")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client")),
    )
    op.create_index(
        "uq_client_nom_entreprise_lower", "client", [sa.literal_column("lower(nom_entreprise)")], unique=True
    )
    op.create_table(
        "equipement",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("localisation", sa.String(length=200), nullable=False),
        sa.Column("numero_serie", sa.String(length=100), nullable=True),
        sa.Column("marque", sa.String(length=100), nullable=True),
        sa.Column("modele", sa.String(length=100), nullable=True),
        sa.Column("statut", sa.String(length=20), server_default="operationnel", nullable=False),
        sa.Column("criticite", sa.String(length=20), server_default="standard", nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("frequence_entretien", sa.Integer(), nullable=True),
        sa.Column("date_mise_en_service", sa.Date(), nullable=True),
        sa.Column("date_fin_garantie", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "statut IN ('operationnel', 'maintenance', 'panne', 'retire')", name=op.f("ck_equipement_statut")
        ),
        sa.CheckConstraint(
            "criticite IN ('critique', 'important', 'standard', 'non_critique')", name=op.f("ck_equipement_criticite")
        ),
        sa.CheckConstraint(
            "frequence_entretien BETWEEN 1 AND 3650", name=op.f("ck_equipement_frequence_entretien_days")
        ),
        sa.CheckConstraint(
            "date_fin_garantie >= date_mise_en_service", name=op.f("ck_equipement_garantie_after_mise_en_service")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_equipement_client_id_client"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipement")),
    )
    op.create_index("uq_equipement_nom_lower", "equipement", [sa.literal_column("lower(nom)")], unique=True)
    op.create_index(
        "uq_equipement_numero_serie_lower", "equipement", [sa.literal_column("lower(numero_serie)")], unique=True
    )
    op.create_index("ix_equipement_statut", "equipement", ["statut"])
    op.create_index("ix_equipement_criticite", "equipement", ["criticite"])
    op.create_index("ix_equipement_client_id_statut", "equipement", ["client_id", "statut"])
    op.create_index("ix_equipement_type_lower", "equipement", [sa.literal_column("lower(type)")])
    op.create_index("ix_equipement_localisation_lower", "equipement", [sa.literal_column("lower(localisation)")])
    # `q` text search (ILIKE '%...%'): trigram indexes. pg_trgm is installed in `public` by provisioning
    # and the migration's search_path is the service schema only, hence the qualified operator class.
    op.execute(
        f"CREATE INDEX ix_equipement_search_trgm ON equipement USING gin ({EQUIPEMENT_SEARCH_SQL} public.gin_trgm_ops)"
    )
    op.execute(f"CREATE INDEX ix_client_search_trgm ON client USING gin ({CLIENT_SEARCH_SQL} public.gin_trgm_ops)")

    op.create_table(
        "equipement_statut_historique",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("ancien_statut", sa.String(length=20), nullable=True),
        sa.Column("nouveau_statut", sa.String(length=20), nullable=False),
        sa.Column("motif", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("event_id", sa.String(length=100), nullable=True),
        sa.Column("horodatage", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("source IN ('api', 'event')", name=op.f("ck_equipement_statut_historique_source")),
        sa.CheckConstraint(
            "nouveau_statut IN ('operationnel', 'maintenance', 'panne', 'retire')",
            name=op.f("ck_equipement_statut_historique_nouveau_statut"),
        ),
        sa.ForeignKeyConstraint(
            ["equipement_id"],
            ["equipement.id"],
            name=op.f("fk_equipement_statut_historique_equipement_id_equipement"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_equipement_statut_historique")),
    )
    op.create_index(
        "ix_equipement_statut_historique_equipement_time",
        "equipement_statut_historique",
        ["equipement_id", "horodatage"],
    )
    # Append-only: no UPDATE ever; DELETE only through the cascade of a deleted equipment (trigger depth 2).
    op.execute(
        """
        CREATE FUNCTION equipement_statut_historique_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' OR pg_trigger_depth() < 2 THEN
                RAISE EXCEPTION 'equipement_statut_historique is append-only (% refused)', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN OLD;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER equipement_statut_historique_append_only BEFORE UPDATE OR DELETE"
        " ON equipement_statut_historique FOR EACH ROW EXECUTE FUNCTION equipement_statut_historique_append_only()"
    )

    op.create_table(
        "intervention_ref",
        sa.Column("intervention_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("intervention_id", name=op.f("pk_intervention_ref")),
    )
    op.create_index("ix_intervention_ref_equipement_id_statut", "intervention_ref", ["equipement_id", "statut"])
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    op.drop_table("intervention_ref")
    op.execute("DROP TRIGGER equipement_statut_historique_append_only ON equipement_statut_historique")
    op.execute("DROP FUNCTION equipement_statut_historique_append_only()")
    op.drop_table("equipement_statut_historique")
    op.drop_table("equipement")
    op.drop_table("client")
