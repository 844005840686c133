"""Tables of the reports schema: the read model fed only by the other services' events.

- `intervention_fait`: one row per intervention, its latest snapshot (interventions' events, ordered by
  `occurred_at`) and its parts cost (inventory's events, ordered by `pieces_version`).
- `agregat_jour` / `agregat_jour_global`: the KPI sums per day, kept incrementally: when a fact changes, its
  old contribution is taken out and its new one put in (aggregates.py). `agregat_jour` is keyed by every
  filterable dimension an intervention carries; `agregat_jour_global` only by type and priority, so that
  an unfiltered question over two years reads a few thousand rows.
- `agregat_mois`: the same sums per month along one axis at a time (everything, one client, one
  technician, one equipment type), so that a monthly question over years reads a few hundred rows
  whatever the volume; the partial months at a period's edges come from the daily sums.
- `agregat_total_jour` / `agregat_total_mois`: the same per axis with type and priority summed away, for
  the questions that filter on neither; `agregat_paire_mois`: per month, one axis and a client or a
  technician, for a question filtered on the one and grouped by the other.
- `statut_equipement` and `panne_episode`: assets' statut changes and the breakdown episodes rebuilt from
  them (MTBF, availability); `panne_mois`: the closed episodes' count and downtime per equipment and month.
- Replicas for names and filters: equipment, clients, technicians, parts.
- `export_job`: the export jobs and their files.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, TSTZRANGE
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mif_common.db import new_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


# Statuts that keep an intervention in the backlog (DOMAIN.md §2).
STATUTS_OUVERTS = ("ouverte", "affectee", "en_cours", "en_attente")

# The sums kept per day. Each counts by its own date (aggregates.py says which): creation, closure,
# leaving the backlog, or deadline.
METRIQUES: tuple[str, ...] = (
    "creees",  # by creation day
    "sorties",  # by the day it left the backlog (closed, cancelled, archived unclosed)
    "cloturees",  # the rest by closure day
    "demarrees",  # closed with a start of work
    "secondes_travaux",  # Σ closure − start of work
    "secondes_resolution",  # Σ closure − creation
    "minutes_travaillees",  # Σ duree_reelle
    "cout_pieces",  # Σ parts cost, centimes
    "sla_evaluees",  # closed with a deadline
    "sla_respectees",  # closed by it
    "correctives_cloturees",
    "correctives_refaites",  # followed by another corrective on the equipment within N days
    "preventives_dues",  # by deadline day: preventive, not cancelled
    "preventives_a_temps",  # of those, closed by the deadline
)


def _metric_columns() -> list[sa.Column[Any]]:
    return [sa.Column(m, sa.BigInteger, nullable=False, server_default="0") for m in METRIQUES]


# Dimension ids are 0 when absent (no client, not assigned): a primary key column cannot be NULL.
agregat_jour = sa.Table(
    "agregat_jour",
    Base.metadata,
    sa.Column("jour", sa.Date, primary_key=True),
    sa.Column("client_id", sa.BigInteger, primary_key=True),
    sa.Column("equipement_id", sa.BigInteger, primary_key=True),
    sa.Column("technicien_id", sa.BigInteger, primary_key=True),
    sa.Column("type", sa.String(20), primary_key=True),
    sa.Column("priorite", sa.String(20), primary_key=True),
    *_metric_columns(),
    sa.Index("ix_agregat_jour_client", "client_id", "jour"),
    sa.Index("ix_agregat_jour_equipement", "equipement_id", "jour"),
    sa.Index("ix_agregat_jour_technicien", "technicien_id", "jour"),
)

agregat_jour_global = sa.Table(
    "agregat_jour_global",
    Base.metadata,
    sa.Column("jour", sa.Date, primary_key=True),
    sa.Column("type", sa.String(20), primary_key=True),
    sa.Column("priorite", sa.String(20), primary_key=True),
    *_metric_columns(),
)

# The axes of `agregat_mois` and the fact field each is keyed by (`valeur` is its text, '' for `tout`).
AXES_MOIS: dict[str, str | None] = {
    "tout": None,
    "client": "client_id",
    "technicien": "technicien_id",
    "type_equipement": "type_equipement",
}

agregat_mois = sa.Table(
    "agregat_mois",
    Base.metadata,
    sa.Column("axe", sa.String(20), primary_key=True),
    sa.Column("valeur", sa.String(100), primary_key=True),
    sa.Column("mois", sa.Date, primary_key=True),
    sa.Column("type", sa.String(20), primary_key=True),
    sa.Column("priorite", sa.String(20), primary_key=True),
    *_metric_columns(),
)

# The same sums once more with type and priority summed away, per axis, per day and per month: what a
# question that filters on neither (most do) reads. A technician's month is one row, not sixteen, and the
# partial months at a period's edges read a row per day and value instead of every dimension's rows.
agregat_total_jour = sa.Table(
    "agregat_total_jour",
    Base.metadata,
    sa.Column("axe", sa.String(20), primary_key=True),
    sa.Column("valeur", sa.String(100), primary_key=True),
    sa.Column("jour", sa.Date, primary_key=True),
    *_metric_columns(),
    sa.Index("ix_agregat_total_jour_axe_jour", "axe", "jour"),
)

agregat_total_mois = sa.Table(
    "agregat_total_mois",
    Base.metadata,
    sa.Column("axe", sa.String(20), primary_key=True),
    sa.Column("valeur", sa.String(100), primary_key=True),
    sa.Column("mois", sa.Date, primary_key=True),
    *_metric_columns(),
)

# The sums per month along one axis and per value of another: a question filtered on one axis and grouped
# by another (a client's month per technician, an equipment type's per client) reads a row per value of
# the second and month, not the first one's every daily row. Only the pairs a question can ask for: `par`
# is a client or a technician (`valeur_par` its id, 0 when absent).
PAIRES_MOIS: tuple[tuple[str, str], ...] = (
    ("client", "technicien"),
    ("technicien", "client"),
    ("type_equipement", "client"),
    ("type_equipement", "technicien"),
)

agregat_paire_mois = sa.Table(
    "agregat_paire_mois",
    Base.metadata,
    sa.Column("axe", sa.String(20), primary_key=True),
    sa.Column("valeur", sa.String(100), primary_key=True),
    sa.Column("par", sa.String(20), primary_key=True),
    sa.Column("mois", sa.Date, primary_key=True),
    sa.Column("valeur_par", sa.BigInteger, primary_key=True),
    *_metric_columns(),
)


class InterventionFait(Base):
    __tablename__ = "intervention_fait"

    intervention_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    # NULL until the first snapshot arrives (a parts cost may come first): such a row counts nowhere.
    equipement_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # The equipment's type as assets last said (kept in step by equipment events: the monthly sums'
    # `type_equipement` axis follows it).
    type_equipement: Mapped[str | None] = mapped_column(sa.String(100))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    type: Mapped[str | None] = mapped_column(sa.String(20))
    priorite: Mapped[str | None] = mapped_column(sa.String(20))
    statut: Mapped[str | None] = mapped_column(sa.String(20))
    titre: Mapped[str | None] = mapped_column(sa.String(255))
    planning_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    date_creation: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_limite: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_debut: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_cloture: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # When it left the backlog (closure, cancellation or archival): NULL while open.
    date_fin: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # [date_creation, date_fin): the backlog's age question is "which ranges contain this instant".
    ouverte_pendant: Mapped[Any] = mapped_column(
        TSTZRANGE,
        sa.Computed(
            "CASE WHEN date_creation IS NULL THEN 'empty'::tstzrange"
            " WHEN date_fin IS NULL THEN tstzrange(date_creation, NULL)"
            " ELSE tstzrange(date_creation, greatest(date_fin, date_creation)) END",
            persisted=True,
        ),
    )
    duree_reelle: Mapped[int | None] = mapped_column(sa.Integer)
    cout_pieces: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    pieces_version: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    pieces_lignes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    refaite: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    occurred_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_intervention_fait_ouverte_pendant", "ouverte_pendant", postgresql_using="gist"),
        sa.Index("ix_intervention_fait_equipement_cloture", "equipement_id", "date_cloture"),
        sa.Index("ix_intervention_fait_equipement_creation", "equipement_id", "date_creation"),
        sa.Index("ix_intervention_fait_client_creation", "client_id", "date_creation"),
        # A technician's equipment (the MTBF of a technician's scope) from the index alone.
        sa.Index("ix_intervention_fait_technicien_equipement", "technicien_id", "equipement_id"),
        sa.Index("ix_intervention_fait_creation", "date_creation"),
    )


class StatutEquipement(Base):
    """One statut change of an equipment (assets' `status_changed`), in whatever order they arrive."""

    __tablename__ = "statut_equipement"

    equipement_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    statut: Mapped[str] = mapped_column(sa.String(20))
    ancien_statut: Mapped[str | None] = mapped_column(sa.String(20))


PANNE_PERIODE_SQL = "CASE WHEN fin IS NULL THEN tstzrange(debut, NULL) ELSE tstzrange(debut, greatest(fin, debut)) END"


class PanneEpisode(Base):
    """A breakdown: from a change to `panne` to the next change away from it (open while `fin` is NULL).
    Rebuilt for one equipment from its statut changes whenever one arrives."""

    __tablename__ = "panne_episode"

    equipement_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    debut: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    fin: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # [debut, fin), unbounded while it runs: "which breakdowns overlap this stretch" through a GiST index.
    periode: Mapped[Any] = mapped_column(TSTZRANGE, sa.Computed(PANNE_PERIODE_SQL, persisted=True), nullable=False)

    __table_args__ = (
        sa.Index("ix_panne_episode_periode", "periode", postgresql_using="gist"),
        # The running breakdowns over a period's whole months (the closed ones are in panne_mois).
        sa.Index(
            "ix_panne_episode_en_cours", "periode", postgresql_using="gist", postgresql_where=sa.text("fin IS NULL")
        ),
    )


class PanneMois(Base):
    """The closed breakdowns of one equipment per month (company time zone): how many began in it, and the
    downtime that fell within it. Rebuilt with the equipment's episodes (replicas.record_statut), so that a
    monthly MTBF reads a row per equipment and month, and the episodes only at its partial edge months and
    for the breakdowns still running."""

    __tablename__ = "panne_mois"

    equipement_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    mois: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    pannes: Mapped[int] = mapped_column(sa.Integer)
    secondes_arret: Mapped[Decimal] = mapped_column(sa.Numeric(20, 6))


class EquipementRef(Base):
    __tablename__ = "equipement_ref"

    equipement_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    nom: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[str] = mapped_column(sa.String(100))
    localisation: Mapped[str] = mapped_column(sa.String(255))
    numero_serie: Mapped[str | None] = mapped_column(sa.String(100))
    statut: Mapped[str] = mapped_column(sa.String(20))
    criticite: Mapped[str] = mapped_column(sa.String(20))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    version: Mapped[int] = mapped_column(sa.Integer)
    supprime: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    # A first-seen time: the equipment's operating time for MTBF counts from the later of this and the
    # period's start.
    cree_le: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_equipement_ref_type", "type"),
        sa.Index("ix_equipement_ref_localisation", "localisation"),
        sa.Index("ix_equipement_ref_client", "client_id"),
    )


class ClientRef(Base):
    __tablename__ = "client_ref"

    client_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    nom: Mapped[str] = mapped_column(sa.String(255))
    ville: Mapped[str | None] = mapped_column(sa.String(100))
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    version: Mapped[int] = mapped_column(sa.Integer)


class TechnicienRef(Base):
    __tablename__ = "technicien_ref"

    technicien_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    nom: Mapped[str] = mapped_column(sa.String(255))
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    version: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (sa.Index("ix_technicien_ref_user", "user_id"),)


class PieceRef(Base):
    __tablename__ = "piece_ref"

    piece_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    reference: Mapped[str | None] = mapped_column(sa.String(100))
    nom: Mapped[str | None] = mapped_column(sa.String(255))
    categorie: Mapped[str | None] = mapped_column(sa.String(100))
    unite: Mapped[str | None] = mapped_column(sa.String(20))
    prix_unitaire: Mapped[int | None] = mapped_column(sa.BigInteger)
    stock_minimum: Mapped[float | None] = mapped_column(sa.Float)
    stock_maximum: Mapped[float | None] = mapped_column(sa.Float)
    version: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    supprime: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    # From `inventory.stock.moved.v1`: available over every location after the newest movement.
    disponible: Mapped[float | None] = mapped_column(sa.Float)
    mouvement_id: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class StatutJob(StrEnum):
    pending = "pending"
    generating = "generating"
    completed = "completed"
    failed = "failed"
    expired = "expired"


class ExportJob(Base):
    __tablename__ = "export_job"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    role: Mapped[str] = mapped_column(sa.String(20))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # the requester's organisation (scope)
    type: Mapped[str] = mapped_column(sa.String(30))
    format: Mapped[str] = mapped_column(sa.String(10))
    parametres: Mapped[dict[str, Any]] = mapped_column(JSONB)
    statut: Mapped[str] = mapped_column(sa.String(20), server_default=StatutJob.pending.value)
    progression: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    lignes: Mapped[int | None] = mapped_column(sa.Integer)
    fichier: Mapped[str | None] = mapped_column(sa.String(255))  # name under the exports directory
    nom_fichier: Mapped[str | None] = mapped_column(sa.String(255))  # offered to the browser
    taille: Mapped[int | None] = mapped_column(sa.BigInteger)
    erreur: Mapped[str | None] = mapped_column(sa.Text)
    cree_le: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    commence_le: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    termine_le: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expire_le: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Touched by the process generating it; a `generating` job whose heartbeat stopped (its process died)
    # is taken again.
    battement: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(f"statut IN {tuple(s.value for s in StatutJob)}", name="statut_connu"),
        sa.CheckConstraint("progression BETWEEN 0 AND 100", name="progression_pourcent"),
        sa.Index("ix_export_job_user", "user_id", "id"),
        sa.Index("ix_export_job_a_faire", "id", postgresql_where=sa.text("statut IN ('pending', 'generating')")),
    )
