"""Breakdowns per equipment and month (count begun, downtime within), filled from the closed episodes, and
each episode's period as a range with a GiST index (the edges of an MTBF question).

Revision ID: 0004
Revises: 0003
"""

import os

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copy of mif_reports.models.PANNE_PERIODE_SQL.
PANNE_PERIODE_SQL = "CASE WHEN fin IS NULL THEN tstzrange(debut, NULL) ELSE tstzrange(debut, greatest(fin, debut)) END"

# Months are the company's, as the service counts them (ReportsSettings.fuseau, suite-wide MIF_FUSEAU).
FUSEAU = os.environ.get("MIF_REPORTS_FUSEAU") or os.environ.get("MIF_FUSEAU") or "Africa/Casablanca"


def upgrade() -> None:
    op.add_column(
        "panne_episode",
        sa.Column("periode", postgresql.TSTZRANGE(), sa.Computed(PANNE_PERIODE_SQL, persisted=True), nullable=False),
    )
    op.create_index("ix_panne_episode_periode", "panne_episode", ["periode"], postgresql_using="gist")
    op.create_table(
        "panne_mois",
        sa.Column("equipement_id", sa.BigInteger(), nullable=False),
        sa.Column("mois", sa.Date(), nullable=False),
        sa.Column("pannes", sa.Integer(), nullable=False),
        sa.Column("secondes_arret", sa.Numeric(20, 6), nullable=False),
        sa.PrimaryKeyConstraint("equipement_id", "mois", name=op.f("pk_panne_mois")),
    )
    op.execute(
        sa.text(
            """
            INSERT INTO panne_mois (equipement_id, mois, pannes, secondes_arret)
            SELECT e.equipement_id, m.mois, count(*) FILTER (WHERE e.debut >= m.lo),
                   sum(extract(epoch FROM least(e.fin, m.hi) - greatest(e.debut, m.lo)))
            FROM panne_episode e
            CROSS JOIN LATERAL (
                SELECT g::date AS mois, g AT TIME ZONE :fuseau AS lo,
                       (g + interval '1 month') AT TIME ZONE :fuseau AS hi
                FROM generate_series(
                    date_trunc('month', e.debut AT TIME ZONE :fuseau), e.fin AT TIME ZONE :fuseau, interval '1 month'
                ) AS g
            ) AS m
            WHERE e.fin IS NOT NULL AND m.lo < e.fin AND m.hi > e.debut
            GROUP BY e.equipement_id, m.mois
            """
        ).bindparams(fuseau=FUSEAU)
    )


def downgrade() -> None:
    op.drop_table("panne_mois")
    op.drop_index("ix_panne_episode_periode", table_name="panne_episode", postgresql_using="gist")
    op.drop_column("panne_episode", "periode")
