"""Usage and condition rules (issue #17, DOMAIN.md §10): a plan's `declencheur` (`calendrier`, `usage`,
`seuil`, `variation`) and the columns of the meter rules; the replica of assets' meters with a counter's
usage state (`compteur_ref`) and the recent readings of the meters a usage or rate rule watches
(`releve_ref`). Calendar plans keep their frequency and next date; the other kinds have none.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copy of the kinds (a migration never imports code that may change).
DECLENCHEURS = "('calendrier', 'usage', 'seuil', 'variation')"


def upgrade() -> None:
    op.add_column("plan", sa.Column("declencheur", sa.String(length=20), server_default="calendrier", nullable=False))
    op.alter_column("plan", "frequence", existing_type=sa.String(length=20), nullable=True)
    op.alter_column("plan", "prochaine_date", existing_type=sa.DateTime(timezone=True), nullable=True)
    for column in (
        sa.Column("compteur_id", sa.BigInteger(), nullable=True),
        sa.Column("intervalle", sa.Double(), nullable=True),
        sa.Column("prochain_seuil", sa.Double(), nullable=True),
        sa.Column("operateur", sa.String(length=1), nullable=True),
        sa.Column("seuil", sa.Double(), nullable=True),
        sa.Column("duree_minutes", sa.Integer(), nullable=True),
        sa.Column("priorite", sa.String(length=20), nullable=True),
        sa.Column("titre", sa.String(length=255), nullable=True),
        sa.Column("hors_limite_depuis", sa.DateTime(timezone=True), nullable=True),
        sa.Column("episode_declenche", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("dernier_releve", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("plan", column)
    op.create_check_constraint(op.f("ck_plan_declencheur"), "plan", f"declencheur IN {DECLENCHEURS}")
    op.create_check_constraint(
        op.f("ck_plan_calendrier"),
        "plan",
        "declencheur <> 'calendrier' OR (frequence IS NOT NULL AND prochaine_date IS NOT NULL)",
    )
    op.create_check_constraint(
        op.f("ck_plan_compteur"), "plan", "declencheur = 'calendrier' OR compteur_id IS NOT NULL"
    )
    op.create_check_constraint(
        op.f("ck_plan_usage"), "plan", "declencheur <> 'usage' OR (intervalle > 0 AND prochain_seuil IS NOT NULL)"
    )
    op.create_check_constraint(
        op.f("ck_plan_condition"),
        "plan",
        "declencheur NOT IN ('seuil', 'variation') OR (operateur IN ('>', '<') AND seuil IS NOT NULL "
        "AND duree_minutes >= 0 AND priorite IS NOT NULL)",
    )
    op.create_index("ix_plan_compteur_id", "plan", ["compteur_id"], postgresql_where=sa.text("compteur_id IS NOT NULL"))

    op.create_table(
        "compteur_ref",
        sa.Column("compteur_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("nature", sa.String(length=20), nullable=False),
        sa.Column("unite", sa.String(length=30), nullable=False),
        sa.Column("supprime", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("derniere_valeur", sa.Double(), nullable=True),
        sa.Column("dernier_horodatage", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usage_cumule", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("compteur_id", name=op.f("pk_compteur_ref")),
    )
    op.create_index("ix_compteur_ref_equipement_id", "compteur_ref", ["equipement_id"])
    op.create_table(
        "releve_ref",
        sa.Column("compteur_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("horodatage", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valeur", sa.Double(), nullable=False),
        sa.Column("usage", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("compteur_id", "horodatage", name=op.f("pk_releve_ref")),
    )


def downgrade() -> None:
    # Fails on plans of the new kinds (null frequency) rather than deleting them.
    op.drop_table("releve_ref")
    op.drop_index("ix_compteur_ref_equipement_id", table_name="compteur_ref")
    op.drop_table("compteur_ref")
    op.drop_index("ix_plan_compteur_id", table_name="plan")
    for name in ("condition", "usage", "compteur", "calendrier", "declencheur"):
        op.drop_constraint(op.f(f"ck_plan_{name}"), "plan", type_="check")
    for column in (
        "dernier_releve",
        "episode_declenche",
        "hors_limite_depuis",
        "titre",
        "priorite",
        "duree_minutes",
        "seuil",
        "operateur",
        "prochain_seuil",
        "intervalle",
        "compteur_id",
    ):
        op.drop_column("plan", column)
    op.alter_column("plan", "prochaine_date", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.alter_column("plan", "frequence", existing_type=sa.String(length=20), nullable=False)
    op.drop_column("plan", "declencheur")
