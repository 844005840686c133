"""Tables of the documents schema: document metadata, and the replicas that decide who sees what
(interventions from `interventions.intervention.*`, technicians' user ids from `planning.technicien.*`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mif_common.db import new_metadata


class Categorie(StrEnum):
    photo = "photo"
    rapport = "rapport"
    manuel = "manuel"
    certificat = "certificat"
    autre = "autre"


class StatutIntervention(StrEnum):
    ouverte = "ouverte"
    affectee = "affectee"
    en_cours = "en_cours"
    en_attente = "en_attente"
    cloturee = "cloturee"
    annulee = "annulee"
    archivee = "archivee"


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Document(Base):
    """A file attached to an intervention. The bytes live in storage under `storage_key` (random,
    never derived from the name); `filename` is the sanitised original name, for display only.

    Deleting is soft: `deleted_at` hides the row at once, the file is removed when `purge_after` has
    passed (at once for a user's deletion, after a grace period when the intervention was deleted),
    and `purged_at` records that it is gone."""

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    intervention_id: Mapped[int] = mapped_column(sa.BigInteger)
    filename: Mapped[str] = mapped_column(sa.String(255))
    mime: Mapped[str] = mapped_column(sa.String(100))
    taille: Mapped[int] = mapped_column(sa.BigInteger)  # bytes of the original file
    sha256: Mapped[str] = mapped_column(sa.String(64))  # of the original bytes (hex)
    categorie: Mapped[str] = mapped_column(sa.String(20), server_default=Categorie.autre.value)
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    uploaded_by: Mapped[int] = mapped_column(sa.BigInteger)
    date_upload: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    storage_key: Mapped[str] = mapped_column(sa.String(100))
    # Encryption key the stored bytes were written with; None: stored in clear.
    key_id: Mapped[str | None] = mapped_column(sa.String(64))
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    deleted_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    purge_after: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    purged_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(f"categorie IN {_in(Categorie)}", name="categorie"),
        sa.CheckConstraint("taille > 0", name="taille_positive"),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        sa.CheckConstraint("(deleted_at IS NULL) = (purge_after IS NULL)", name="purge_after_iff_deleted"),
        sa.Index("uq_document_storage_key", "storage_key", unique=True),
        sa.Index("ix_document_intervention_id_live", "intervention_id", postgresql_where=sa.text("deleted_at IS NULL")),
        sa.Index(
            "ix_document_purge_pending",
            "purge_after",
            postgresql_where=sa.text("deleted_at IS NOT NULL AND purged_at IS NULL"),
        ),
        sa.Index("ix_document_key_id", "key_id"),
    )


class InterventionRef(Base):
    """Replica of what documents needs to know about an intervention (who may see it, whether it is
    archived), fed by `interventions.intervention.*.v1` and by read-through on a miss."""

    __tablename__ = "intervention_ref"

    intervention_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    statut: Mapped[str] = mapped_column(sa.String(20))
    # When the fact behind this row happened at interventions; older events are ignored.
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # Set by `interventions.intervention.deleted.v1` (not in the v1 contract yet, handled if it comes).
    deleted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_intervention_ref_client_id", "client_id"),
        sa.Index("ix_intervention_ref_technicien_id", "technicien_id"),
    )


class TechnicienRef(Base):
    """technicien_id → user_id (what a technician's token carries), from `planning.technicien.*.v1`."""

    __tablename__ = "technicien_ref"

    technicien_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    version: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (sa.Index("ix_technicien_ref_user_id", "user_id"),)
