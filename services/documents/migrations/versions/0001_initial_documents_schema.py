"""Initial documents schema: documents, intervention and technician replicas, outbox, inbox.

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
        "document",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("intervention_id", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("mime", sa.String(length=100), nullable=False),
        sa.Column("taille", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("categorie", sa.String(length=20), server_default="autre", nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("uploaded_by", sa.BigInteger(), nullable=False),
        sa.Column("date_upload", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("storage_key", sa.String(length=100), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.BigInteger(), nullable=True),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "categorie IN ('photo', 'rapport', 'manuel', 'certificat', 'autre')", name=op.f("ck_document_categorie")
        ),
        sa.CheckConstraint("taille > 0", name=op.f("ck_document_taille_positive")),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_document_sha256_hex")),
        sa.CheckConstraint(
            "(deleted_at IS NULL) = (purge_after IS NULL)", name=op.f("ck_document_purge_after_iff_deleted")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
    )
    op.create_index("uq_document_storage_key", "document", ["storage_key"], unique=True)
    op.create_index(
        "ix_document_intervention_id_live",
        "document",
        ["intervention_id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_document_purge_pending",
        "document",
        ["purge_after"],
        postgresql_where=sa.text("deleted_at IS NOT NULL AND purged_at IS NULL"),
    )
    op.create_index("ix_document_key_id", "document", ["key_id"])

    op.create_table(
        "intervention_ref",
        sa.Column("intervention_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("intervention_id", name=op.f("pk_intervention_ref")),
    )
    op.create_index("ix_intervention_ref_client_id", "intervention_ref", ["client_id"])
    op.create_index("ix_intervention_ref_technicien_id", "intervention_ref", ["technicien_id"])

    op.create_table(
        "technicien_ref",
        sa.Column("technicien_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("technicien_id", name=op.f("pk_technicien_ref")),
    )
    op.create_index("ix_technicien_ref_user_id", "technicien_ref", ["user_id"])
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    op.drop_table("technicien_ref")
    op.drop_table("intervention_ref")
    op.drop_table("document")
