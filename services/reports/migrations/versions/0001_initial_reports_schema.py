"""Initial reports schema: the read model (interventions, daily KPI sums, equipment statut changes and
breakdown episodes, replicas of equipment, clients, technicians, parts), export jobs, outbox, inbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mif_common.events.tables import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copy of mif_reports.models' expression (a migration never imports code that may change).
OUVERTE_PENDANT_SQL = (
    "CASE WHEN date_creation IS NULL THEN 'empty'::tstzrange"
    " WHEN date_fin IS NULL THEN tstzrange(date_creation, NULL)"
    " ELSE tstzrange(date_creation, greatest(date_fin, date_creation)) END"
)


def upgrade() -> None:
    op.create_table(
        "agregat_jour",
        sa.Column("jour", sa.Date(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("technicien_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("priorite", sa.String(length=20), nullable=False),
        sa.Column("creees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sorties", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cloturees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("demarrees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("secondes_travaux", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("secondes_resolution", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("minutes_travaillees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cout_pieces", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sla_evaluees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sla_respectees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("correctives_cloturees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("correctives_refaites", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("preventives_dues", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("preventives_a_temps", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint(
            "jour", "client_id", "equipement_id", "technicien_id", "type", "priorite", name=op.f("pk_agregat_jour")
        ),
    )
    op.create_index("ix_agregat_jour_client", "agregat_jour", ["client_id", "jour"], unique=False)
    op.create_index("ix_agregat_jour_equipement", "agregat_jour", ["equipement_id", "jour"], unique=False)
    op.create_index("ix_agregat_jour_technicien", "agregat_jour", ["technicien_id", "jour"], unique=False)
    op.create_table(
        "agregat_jour_global",
        sa.Column("jour", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("priorite", sa.String(length=20), nullable=False),
        sa.Column("creees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sorties", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cloturees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("demarrees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("secondes_travaux", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("secondes_resolution", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("minutes_travaillees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cout_pieces", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sla_evaluees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sla_respectees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("correctives_cloturees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("correctives_refaites", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("preventives_dues", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("preventives_a_temps", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("jour", "type", "priorite", name=op.f("pk_agregat_jour_global")),
    )
    op.create_table(
        "client_ref",
        sa.Column("client_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nom", sa.String(length=255), nullable=False),
        sa.Column("ville", sa.String(length=100), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_client_ref")),
    )
    op.create_table(
        "equipement_ref",
        sa.Column("equipement_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("nom", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("localisation", sa.String(length=255), nullable=False),
        sa.Column("numero_serie", sa.String(length=100), nullable=True),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("criticite", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("supprime", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("cree_le", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("equipement_id", name=op.f("pk_equipement_ref")),
    )
    op.create_index("ix_equipement_ref_client", "equipement_ref", ["client_id"], unique=False)
    op.create_index("ix_equipement_ref_localisation", "equipement_ref", ["localisation"], unique=False)
    op.create_index("ix_equipement_ref_type", "equipement_ref", ["type"], unique=False)
    op.create_table(
        "export_job",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("parametres", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("statut", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("progression", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lignes", sa.Integer(), nullable=True),
        sa.Column("fichier", sa.String(length=255), nullable=True),
        sa.Column("nom_fichier", sa.String(length=255), nullable=True),
        sa.Column("taille", sa.BigInteger(), nullable=True),
        sa.Column("erreur", sa.Text(), nullable=True),
        sa.Column("cree_le", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("commence_le", sa.DateTime(timezone=True), nullable=True),
        sa.Column("termine_le", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expire_le", sa.DateTime(timezone=True), nullable=True),
        sa.Column("battement", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "statut IN ('pending', 'generating', 'completed', 'failed', 'expired')",
            name=op.f("ck_export_job_statut_connu"),
        ),
        sa.CheckConstraint("progression BETWEEN 0 AND 100", name=op.f("ck_export_job_progression_pourcent")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_job")),
    )
    op.create_index(
        "ix_export_job_a_faire",
        "export_job",
        ["id"],
        unique=False,
        postgresql_where=sa.text("statut IN ('pending', 'generating')"),
    )
    op.create_index("ix_export_job_user", "export_job", ["user_id", "id"], unique=False)
    op.create_table(
        "intervention_fait",
        sa.Column("intervention_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=20), nullable=True),
        sa.Column("priorite", sa.String(length=20), nullable=True),
        sa.Column("statut", sa.String(length=20), nullable=True),
        sa.Column("titre", sa.String(length=255), nullable=True),
        sa.Column("planning_id", sa.BigInteger(), nullable=True),
        sa.Column("date_creation", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_limite", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_debut", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_cloture", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_fin", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "ouverte_pendant",
            postgresql.TSTZRANGE(),
            sa.Computed(
                OUVERTE_PENDANT_SQL,
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("duree_reelle", sa.Integer(), nullable=True),
        sa.Column("cout_pieces", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("pieces_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pieces_lignes", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
        sa.Column("refaite", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("intervention_id", name=op.f("pk_intervention_fait")),
    )
    op.create_index(
        "ix_intervention_fait_client_creation", "intervention_fait", ["client_id", "date_creation"], unique=False
    )
    op.create_index("ix_intervention_fait_creation", "intervention_fait", ["date_creation"], unique=False)
    op.create_index(
        "ix_intervention_fait_equipement_cloture", "intervention_fait", ["equipement_id", "date_cloture"], unique=False
    )
    op.create_index(
        "ix_intervention_fait_equipement_creation",
        "intervention_fait",
        ["equipement_id", "date_creation"],
        unique=False,
    )
    op.create_index(
        "ix_intervention_fait_ouverte_pendant",
        "intervention_fait",
        ["ouverte_pendant"],
        unique=False,
        postgresql_using="gist",
    )
    op.create_table(
        "panne_episode",
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("debut", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fin", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("equipement_id", "debut", name=op.f("pk_panne_episode")),
    )
    op.create_table(
        "piece_ref",
        sa.Column("piece_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("nom", sa.String(length=255), nullable=True),
        sa.Column("categorie", sa.String(length=100), nullable=True),
        sa.Column("unite", sa.String(length=20), nullable=True),
        sa.Column("prix_unitaire", sa.BigInteger(), nullable=True),
        sa.Column("stock_minimum", sa.Float(), nullable=True),
        sa.Column("stock_maximum", sa.Float(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("supprime", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("disponible", sa.Float(), nullable=True),
        sa.Column("mouvement_id", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("piece_id", name=op.f("pk_piece_ref")),
    )
    op.create_table(
        "statut_equipement",
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("ancien_statut", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("equipement_id", "occurred_at", name=op.f("pk_statut_equipement")),
    )
    op.create_table(
        "technicien_ref",
        sa.Column("technicien_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("nom", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("technicien_id", name=op.f("pk_technicien_ref")),
    )
    op.create_index("ix_technicien_ref_user", "technicien_ref", ["user_id"], unique=False)
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    op.drop_index("ix_technicien_ref_user", table_name="technicien_ref")
    op.drop_table("technicien_ref")
    op.drop_table("statut_equipement")
    op.drop_table("piece_ref")
    op.drop_table("panne_episode")
    op.drop_index("ix_intervention_fait_ouverte_pendant", table_name="intervention_fait", postgresql_using="gist")
    op.drop_index("ix_intervention_fait_equipement_creation", table_name="intervention_fait")
    op.drop_index("ix_intervention_fait_equipement_cloture", table_name="intervention_fait")
    op.drop_index("ix_intervention_fait_creation", table_name="intervention_fait")
    op.drop_index("ix_intervention_fait_client_creation", table_name="intervention_fait")
    op.drop_table("intervention_fait")
    op.drop_index("ix_export_job_user", table_name="export_job")
    op.drop_index(
        "ix_export_job_a_faire",
        table_name="export_job",
        postgresql_where=sa.text("statut IN ('pending', 'generating')"),
    )
    op.drop_table("export_job")
    op.drop_index("ix_equipement_ref_type", table_name="equipement_ref")
    op.drop_index("ix_equipement_ref_localisation", table_name="equipement_ref")
    op.drop_index("ix_equipement_ref_client", table_name="equipement_ref")
    op.drop_table("equipement_ref")
    op.drop_table("client_ref")
    op.drop_table("agregat_jour_global")
    op.drop_index("ix_agregat_jour_technicien", table_name="agregat_jour")
    op.drop_index("ix_agregat_jour_equipement", table_name="agregat_jour")
    op.drop_index("ix_agregat_jour_client", table_name="agregat_jour")
    op.drop_table("agregat_jour")
