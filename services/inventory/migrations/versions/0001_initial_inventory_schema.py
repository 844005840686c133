"""Initial inventory schema: parts, locations, stock, append-only movements, parts on interventions,
idempotency keys, replicas, outbox, inbox.

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

# Frozen copy of mif_inventory.models.PIECE_SEARCH_SQL (a migration never imports code that may change).
PIECE_SEARCH_SQL = (
    "(reference || ' ' || nom || ' ' || coalesce(categorie, '') || ' ' || coalesce(fabricant, '')"
    " || ' ' || coalesce(reference_fabricant, ''))"
)
QUANTITE = sa.Numeric(precision=14, scale=3)
NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "piece",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("reference", sa.String(length=60), nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("categorie", sa.String(length=100), nullable=True),
        sa.Column("fabricant", sa.String(length=100), nullable=True),
        sa.Column("reference_fabricant", sa.String(length=100), nullable=True),
        sa.Column("unite", sa.String(length=20), server_default="piece", nullable=False),
        sa.Column("prix_unitaire", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("stock_minimum", QUANTITE, server_default="0", nullable=False),
        sa.Column("stock_maximum", QUANTITE, nullable=True),
        sa.Column("types_equipement", postgresql.ARRAY(sa.String(length=100)), server_default="{}", nullable=False),
        sa.Column("equipement_ids", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False),
        sa.Column("en_alerte", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("supprime_le", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "unite IN ('piece', 'paire', 'jeu', 'boite', 'rouleau', 'litre', 'metre', 'metre_carre', 'kg')",
            name=op.f("ck_piece_unite"),
        ),
        sa.CheckConstraint("prix_unitaire >= 0", name=op.f("ck_piece_prix_positif")),
        sa.CheckConstraint("stock_minimum >= 0", name=op.f("ck_piece_minimum_positif")),
        sa.CheckConstraint(
            "stock_maximum IS NULL OR stock_maximum >= stock_minimum", name=op.f("ck_piece_maximum_above_minimum")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_piece")),
    )
    op.create_index(
        "uq_piece_reference_lower",
        "piece",
        [sa.literal_column("lower(reference)")],
        unique=True,
        postgresql_where=sa.text("supprime_le IS NULL"),
    )
    op.create_index("ix_piece_categorie", "piece", ["categorie"])
    op.create_index("ix_piece_types_equipement", "piece", ["types_equipement"], postgresql_using="gin")
    op.create_index("ix_piece_equipement_ids", "piece", ["equipement_ids"], postgresql_using="gin")
    # `q` text search (ILIKE '%...%'): pg_trgm is installed in `public` by provisioning and the migration's
    # search_path is the service schema only, hence the qualified operator class.
    op.execute(f"CREATE INDEX ix_piece_search_trgm ON piece USING gin ({PIECE_SEARCH_SQL} public.gin_trgm_ops)")

    op.create_table(
        "emplacement",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("adresse", sa.String(length=500), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("date_creation", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("type IN ('magasin_central', 'magasin_site', 'vehicule')", name=op.f("ck_emplacement_type")),
        sa.CheckConstraint(
            "type = 'vehicule' OR technicien_id IS NULL", name=op.f("ck_emplacement_technicien_only_for_vans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emplacement")),
    )
    op.create_index("uq_emplacement_code_lower", "emplacement", [sa.literal_column("lower(code)")], unique=True)

    op.create_table(
        "stock",
        sa.Column("piece_id", sa.BigInteger(), nullable=False),
        sa.Column("emplacement_id", sa.BigInteger(), nullable=False),
        sa.Column("quantite", QUANTITE, server_default="0", nullable=False),
        sa.Column("reservee", QUANTITE, server_default="0", nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("quantite >= 0", name=op.f("ck_stock_quantite_positive")),
        sa.CheckConstraint("reservee >= 0 AND reservee <= quantite", name=op.f("ck_stock_reservee_within_quantite")),
        sa.ForeignKeyConstraint(["piece_id"], ["piece.id"], name=op.f("fk_stock_piece_id_piece")),
        sa.ForeignKeyConstraint(
            ["emplacement_id"], ["emplacement.id"], name=op.f("fk_stock_emplacement_id_emplacement")
        ),
        sa.PrimaryKeyConstraint("piece_id", "emplacement_id", name=op.f("pk_stock")),
    )
    op.create_index("ix_stock_emplacement_id", "stock", ["emplacement_id"])

    op.create_table(
        "mouvement",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("piece_id", sa.BigInteger(), nullable=False),
        sa.Column("emplacement_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("quantite", QUANTITE, nullable=False),
        sa.Column("avant", QUANTITE, nullable=False),
        sa.Column("apres", QUANTITE, nullable=False),
        sa.Column("emplacement_lie_id", sa.BigInteger(), nullable=True),
        sa.Column("intervention_id", sa.BigInteger(), nullable=True),
        sa.Column("prix_unitaire", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("motif", sa.String(length=500), nullable=True),
        sa.Column("date_mouvement", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "type IN ('entree', 'sortie', 'ajustement', 'retour', 'transfert')", name=op.f("ck_mouvement_type")
        ),
        sa.CheckConstraint("quantite <> 0", name=op.f("ck_mouvement_quantite_non_nulle")),
        sa.CheckConstraint("apres = avant + quantite AND apres >= 0", name=op.f("ck_mouvement_apres_coherent")),
        sa.ForeignKeyConstraint(["piece_id"], ["piece.id"], name=op.f("fk_mouvement_piece_id_piece")),
        sa.ForeignKeyConstraint(
            ["emplacement_id"], ["emplacement.id"], name=op.f("fk_mouvement_emplacement_id_emplacement")
        ),
        sa.ForeignKeyConstraint(
            ["emplacement_lie_id"], ["emplacement.id"], name=op.f("fk_mouvement_emplacement_lie_id_emplacement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mouvement")),
    )
    op.create_index("ix_mouvement_piece_id_id", "mouvement", ["piece_id", "id"])
    op.create_index("ix_mouvement_emplacement_id", "mouvement", ["emplacement_id"])
    op.create_index(
        "ix_mouvement_intervention_id",
        "mouvement",
        ["intervention_id"],
        postgresql_where=sa.text("intervention_id IS NOT NULL"),
    )
    # Movements are the stock's ledger: nobody, not even the service's own role (which owns the table and
    # so could not be denied by a REVOKE), may rewrite or remove one. A correction is a new `ajustement`.
    op.execute(
        """
        CREATE FUNCTION mouvement_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'stock movements are append-only: % refused on mouvement', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER mouvement_append_only BEFORE UPDATE OR DELETE ON mouvement "
        "FOR EACH ROW EXECUTE FUNCTION mouvement_append_only()"
    )
    op.execute(
        "CREATE TRIGGER mouvement_no_truncate BEFORE TRUNCATE ON mouvement "
        "FOR EACH STATEMENT EXECUTE FUNCTION mouvement_append_only()"
    )

    op.create_table(
        "intervention_piece",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("intervention_id", sa.BigInteger(), nullable=False),
        sa.Column("piece_id", sa.BigInteger(), nullable=False),
        sa.Column("emplacement_id", sa.BigInteger(), nullable=False),
        sa.Column("reservee", QUANTITE, server_default="0", nullable=False),
        sa.Column("consommee", QUANTITE, server_default="0", nullable=False),
        sa.Column("cout", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("date_modification", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "reservee >= 0 AND consommee >= 0 AND cout >= 0", name=op.f("ck_intervention_piece_positives")
        ),
        sa.ForeignKeyConstraint(["piece_id"], ["piece.id"], name=op.f("fk_intervention_piece_piece_id_piece")),
        sa.ForeignKeyConstraint(
            ["emplacement_id"], ["emplacement.id"], name=op.f("fk_intervention_piece_emplacement_id_emplacement")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_piece")),
        sa.UniqueConstraint(
            "intervention_id",
            "piece_id",
            "emplacement_id",
            name=op.f("uq_intervention_piece_intervention_id_piece_id_emplacement_id"),
        ),
    )
    op.create_table(
        "intervention_cout",
        sa.Column("intervention_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("cout_pieces", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("intervention_id", name=op.f("pk_intervention_cout")),
    )
    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("reponse", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])

    op.create_table(
        "intervention_ref",
        sa.Column("intervention_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("technicien_id", sa.BigInteger(), nullable=True),
        sa.Column("statut", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("intervention_id", name=op.f("pk_intervention_ref")),
    )
    op.create_index("ix_intervention_ref_client_id", "intervention_ref", ["client_id"])
    op.create_table(
        "technicien_ref",
        sa.Column("technicien_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("technicien_id", name=op.f("pk_technicien_ref")),
    )
    op.create_index("ix_technicien_ref_user_id", "technicien_ref", ["user_id"])
    op.create_table(
        "equipement_ref",
        sa.Column("equipement_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("supprime", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("equipement_id", name=op.f("pk_equipement_ref")),
    )
    create_event_tables(op)


def downgrade() -> None:
    drop_event_tables(op)
    for table in (
        "equipement_ref",
        "technicien_ref",
        "intervention_ref",
        "idempotency_key",
        "intervention_cout",
        "intervention_piece",
        "mouvement",
        "stock",
        "emplacement",
        "piece",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS mouvement_append_only()")
