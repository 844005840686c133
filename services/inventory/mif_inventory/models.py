"""Tables of the inventory schema: the parts catalogue, storage locations, stock per location, the
append-only movements, the parts on each intervention, idempotency keys, and the replicas of other
services' data (interventions, technicians, equipment) fed by their events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mif_common.db import new_metadata


class Unite(StrEnum):
    piece = "piece"
    paire = "paire"
    jeu = "jeu"
    boite = "boite"
    rouleau = "rouleau"
    litre = "litre"
    metre = "metre"
    metre_carre = "metre_carre"
    kg = "kg"


class TypeEmplacement(StrEnum):
    magasin_central = "magasin_central"
    magasin_site = "magasin_site"
    vehicule = "vehicule"  # a technician's van


class TypeMouvement(StrEnum):
    entree = "entree"  # received (a delivery)
    sortie = "sortie"  # taken out (consumed on an intervention, or scrapped)
    ajustement = "ajustement"  # an inventory count's correction, either way
    retour = "retour"  # back into stock (unused parts of an intervention, a return from site)
    transfert = "transfert"  # between two locations: one row on each side


# Intervention statuts during which parts may be reserved and consumed on it (DOMAIN.md §9).
STATUTS_PIECES_OUVERTES = ("affectee", "en_cours", "en_attente")
# Statuts that release what is still reserved for it.
STATUTS_FINAUX = ("cloturee", "annulee", "archivee")

# Quantities in the part's unit, to the thousandth (2.5 litres, 0.75 metre).
QUANTITE = sa.Numeric(14, 3)

# Text searched by `q`: the trigram (GIN) index of the migration is built on exactly this expression.
PIECE_SEARCH_SQL = (
    "(reference || ' ' || nom || ' ' || coalesce(categorie, '') || ' ' || coalesce(fabricant, '')"
    " || ' ' || coalesce(reference_fabricant, ''))"
)


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Piece(Base):
    """A spare part of the catalogue. Deleting one only hides it (`supprime_le`): movements keep
    pointing at it."""

    __tablename__ = "piece"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(60))
    nom: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.String(2000))
    categorie: Mapped[str | None] = mapped_column(sa.String(100))
    fabricant: Mapped[str | None] = mapped_column(sa.String(100))
    reference_fabricant: Mapped[str | None] = mapped_column(sa.String(100))
    unite: Mapped[str] = mapped_column(sa.String(20), server_default=Unite.piece.value)
    prix_unitaire: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")  # centimes (MAD)
    stock_minimum: Mapped[Decimal] = mapped_column(QUANTITE, server_default="0")
    stock_maximum: Mapped[Decimal | None] = mapped_column(QUANTITE)
    types_equipement: Mapped[list[str]] = mapped_column(ARRAY(sa.String(100)), server_default="{}")
    equipement_ids: Mapped[list[int]] = mapped_column(ARRAY(sa.BigInteger), server_default="{}")
    # Whether the part is below its minimum now: a low-stock alert goes out when this turns true.
    en_alerte: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    supprime_le: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(f"unite IN {_in(Unite)}", name="unite"),
        sa.CheckConstraint("prix_unitaire >= 0", name="prix_positif"),
        sa.CheckConstraint("stock_minimum >= 0", name="minimum_positif"),
        sa.CheckConstraint("stock_maximum IS NULL OR stock_maximum >= stock_minimum", name="maximum_above_minimum"),
        # A deleted part frees its reference for a new one.
        sa.Index(
            "uq_piece_reference_lower",
            sa.func.lower(sa.literal_column("reference")),
            unique=True,
            postgresql_where=sa.text("supprime_le IS NULL"),
        ),
        sa.Index("ix_piece_categorie", "categorie"),
        # `q`'s trigram index (pg_trgm lives in `public`, hence the qualified operator class).
        sa.Index("ix_piece_search_trgm", sa.text(f"{PIECE_SEARCH_SQL} public.gin_trgm_ops"), postgresql_using="gin"),
        sa.Index("ix_piece_types_equipement", "types_equipement", postgresql_using="gin"),
        sa.Index("ix_piece_equipement_ids", "equipement_ids", postgresql_using="gin"),
    )


class Emplacement(Base):
    """Where stock is kept: the central store, a site's store, a technician's van."""

    __tablename__ = "emplacement"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40))
    nom: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(20))
    # The technician (planning's id) whose van this is.
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    adresse: Mapped[str | None] = mapped_column(sa.String(500))
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"type IN {_in(TypeEmplacement)}", name="type"),
        sa.CheckConstraint("type = 'vehicule' OR technicien_id IS NULL", name="technicien_only_for_vans"),
        sa.Index("uq_emplacement_code_lower", sa.func.lower(sa.literal_column("code")), unique=True),
    )


class Stock(Base):
    """What one location holds of one part: on hand, and how much of it is reserved for interventions.
    Available = on hand − reserved; neither ever goes negative, and reserved never exceeds on hand."""

    __tablename__ = "stock"

    piece_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("piece.id"), primary_key=True)
    emplacement_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("emplacement.id"), primary_key=True)
    quantite: Mapped[Decimal] = mapped_column(QUANTITE, server_default="0")
    reservee: Mapped[Decimal] = mapped_column(QUANTITE, server_default="0")
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint("quantite >= 0", name="quantite_positive"),
        sa.CheckConstraint("reservee >= 0 AND reservee <= quantite", name="reservee_within_quantite"),
        sa.Index("ix_stock_emplacement_id", "emplacement_id"),
    )


class Mouvement(Base):
    """One change of a location's on-hand stock, with who, when, why and the quantity before and after.
    Append-only: a trigger of the migration refuses UPDATE, DELETE and TRUNCATE, whoever asks."""

    __tablename__ = "mouvement"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    piece_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("piece.id"))
    emplacement_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("emplacement.id"))
    type: Mapped[str] = mapped_column(sa.String(20))
    # Signed: what the location's on-hand stock changed by.
    quantite: Mapped[Decimal] = mapped_column(QUANTITE)
    avant: Mapped[Decimal] = mapped_column(QUANTITE)
    apres: Mapped[Decimal] = mapped_column(QUANTITE)
    # The other side of a transfer.
    emplacement_lie_id: Mapped[int | None] = mapped_column(sa.BigInteger, sa.ForeignKey("emplacement.id"))
    intervention_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # The part's unit price when the movement happened (what a consumption costs the intervention).
    prix_unitaire: Mapped[int] = mapped_column(sa.BigInteger)
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    motif: Mapped[str | None] = mapped_column(sa.String(500))
    date_mouvement: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"type IN {_in(TypeMouvement)}", name="type"),
        sa.CheckConstraint("quantite <> 0", name="quantite_non_nulle"),
        sa.CheckConstraint("apres = avant + quantite AND apres >= 0", name="apres_coherent"),
        sa.Index("ix_mouvement_piece_id_id", "piece_id", "id"),
        sa.Index("ix_mouvement_emplacement_id", "emplacement_id"),
        sa.Index(
            "ix_mouvement_intervention_id", "intervention_id", postgresql_where=sa.text("intervention_id IS NOT NULL")
        ),
    )


class InterventionPiece(Base):
    """A part on an intervention, from one location: what is still reserved for it, what was consumed
    (net of returns) and what that cost at the prices of the consumptions."""

    __tablename__ = "intervention_piece"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    intervention_id: Mapped[int] = mapped_column(sa.BigInteger)
    piece_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("piece.id"))
    emplacement_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("emplacement.id"))
    reservee: Mapped[Decimal] = mapped_column(QUANTITE, server_default="0")
    consommee: Mapped[Decimal] = mapped_column(QUANTITE, server_default="0")
    cout: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")  # centimes (MAD)
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint("reservee >= 0 AND consommee >= 0 AND cout >= 0", name="positives"),
        sa.UniqueConstraint("intervention_id", "piece_id", "emplacement_id"),
    )


class InterventionCout(Base):
    """The parts cost of an intervention as last published, with its version (consumers keep the
    highest: `inventory.intervention.parts_costed.v1`)."""

    __tablename__ = "intervention_cout"

    intervention_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    cout_pieces: Mapped[int] = mapped_column(sa.BigInteger)
    version: Mapped[int] = mapped_column(sa.Integer)


class IdempotencyKey(Base):
    """A movement retried with the same `Idempotency-Key` (per user) answers the first result."""

    __tablename__ = "idempotency_key"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    # The first answer's JSON, replayed byte for byte.
    reponse: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (sa.Index("ix_idempotency_key_created_at", "created_at"),)


# --- replicas -----------------------------------------------------------------------------------


class InterventionRef(Base):
    """What inventory needs to know about an intervention (who may see and use its parts, whether parts
    may still be reserved on it), from `interventions.intervention.*.v1` and read-through on a miss."""

    __tablename__ = "intervention_ref"

    intervention_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    equipement_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    statut: Mapped[str] = mapped_column(sa.String(20))
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.Index("ix_intervention_ref_client_id", "client_id"),)


class TechnicienRef(Base):
    """technicien_id → user_id (what a technician's token carries), from `planning.technicien.*.v1`."""

    __tablename__ = "technicien_ref"

    technicien_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    version: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (sa.Index("ix_technicien_ref_user_id", "user_id"),)


class EquipementRef(Base):
    """An equipment's type (what compatible parts are listed for it), from `assets.equipement.*.v1`."""

    __tablename__ = "equipement_ref"

    equipement_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(sa.String(100))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    supprime: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
