"""Tables of the interventions schema: interventions, their append-only history, comments, the
idempotency keys of creations, and the replicas of other services' data (equipment, technicians,
users) fed by their events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mif_common.db import new_metadata


class Statut(StrEnum):
    ouverte = "ouverte"
    affectee = "affectee"
    en_cours = "en_cours"
    en_attente = "en_attente"
    cloturee = "cloturee"
    annulee = "annulee"
    archivee = "archivee"


class Priorite(StrEnum):
    urgente = "urgente"
    haute = "haute"
    normale = "normale"
    basse = "basse"
    programmee = "programmee"


# The English words the existing frontend sends (DOMAIN.md §8), answered with the canonical value.
PRIORITE_ALIASES: dict[str, Priorite] = {
    "urgent": Priorite.urgente,
    "high": Priorite.haute,
    "medium": Priorite.normale,
    "normal": Priorite.normale,
    "low": Priorite.basse,
    "scheduled": Priorite.programmee,
}


def canonical_priorite(value: object) -> object:
    """A priority in any accepted spelling as its canonical value; anything else is left for validation."""
    if isinstance(value, str):
        word = value.strip().lower()
        return PRIORITE_ALIASES.get(word, word)
    return value


class TypeIntervention(StrEnum):
    corrective = "corrective"
    preventive = "preventive"
    ameliorative = "ameliorative"
    diagnostic = "diagnostic"


class ActionHistorique(StrEnum):
    creation = "creation"
    affectation = "affectation"
    desaffectation = "desaffectation"
    changement_statut = "changement_statut"
    modification = "modification"
    commentaire = "commentaire"
    document = "document"
    retard = "retard"
    # The parts cost of the intervention changed at inventory (`inventory.intervention.parts_costed.v1`).
    pieces = "pieces"
    # A checklist added to the intervention, or one of its steps filled (docs/interventions.md).
    checklist = "checklist"


# Not finished: the statuts in which an intervention can be late and keeps its equipment busy.
OPEN_STATUTS = (Statut.ouverte, Statut.affectee, Statut.en_cours, Statut.en_attente)
# Fields can be edited only before these.
CLOSED_STATUTS = (Statut.cloturee, Statut.annulee, Statut.archivee)

# The text `q` searches: French full text over the title (weight A) and the description (weight B).
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('french'::regconfig, coalesce(titre, '')), 'A')"
    " || setweight(to_tsvector('french'::regconfig, coalesce(description, '')), 'B')"
)


def sql_in(values: Any) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Intervention(Base):
    """A work order on one equipment (DOMAIN.md §3), moved through the workflow of §4."""

    __tablename__ = "intervention"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    titre: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    type: Mapped[str] = mapped_column(sa.String(20))
    statut: Mapped[str] = mapped_column(sa.String(20), server_default=Statut.ouverte.value)
    priorite: Mapped[str] = mapped_column(sa.String(20), server_default=Priorite.normale.value)
    urgence: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    # No foreign keys: equipment and technicians belong to other services (replicas below).
    equipement_id: Mapped[int] = mapped_column(sa.BigInteger)
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_limite: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # True while `date_limite` is the priority's SLA default (it then follows a change of priority).
    date_limite_sla: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    date_affectation: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_debut_travaux: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_fin_travaux: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_cloture: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_archivage: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    duree_estimee: Mapped[int | None] = mapped_column(sa.Integer)  # minutes
    duree_reelle: Mapped[int | None] = mapped_column(sa.Integer)  # minutes
    cout_estime: Mapped[int | None] = mapped_column(sa.BigInteger)  # centimes (MAD)
    cout_reel: Mapped[int | None] = mapped_column(sa.BigInteger)  # centimes (MAD), as given by a user
    # The parts consumed on it net of returns, as inventory costs them (centimes MAD; None: inventory
    # never said), and the `version` of the inventory event it comes from: only a higher one replaces it
    # (events may arrive twice or out of order). inventory owns the figure; nobody edits it here.
    cout_pieces: Mapped[int | None] = mapped_column(sa.BigInteger)
    cout_pieces_version: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    rapport: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[int | None] = mapped_column(sa.BigInteger)  # None: generated by a plan
    created_by_role: Mapped[str | None] = mapped_column(sa.String(20))
    planning_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # "<planning_id>:<due date>" of the plan occurrence that generated it: one intervention per key.
    occurrence_key: Mapped[str | None] = mapped_column(sa.String(200))
    # Set once `interventions.intervention.late.v1` is emitted (reset when the deadline moves later).
    late_notified_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Bumped on every change; the ETag is `"<version>"`.
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, sa.Computed(SEARCH_VECTOR_SQL, persisted=True))

    __table_args__ = (
        sa.CheckConstraint(f"statut IN {sql_in(Statut)}", name="statut"),
        sa.CheckConstraint(f"priorite IN {sql_in(Priorite)}", name="priorite"),
        sa.CheckConstraint(f"type IN {sql_in(TypeIntervention)}", name="type"),
        sa.CheckConstraint("NOT urgence OR priorite = 'urgente'", name="urgence_is_urgente"),
        sa.CheckConstraint("duree_estimee >= 0 AND duree_reelle >= 0", name="durees_positives"),
        sa.CheckConstraint("cout_estime >= 0 AND cout_reel >= 0", name="couts_positifs"),
        sa.CheckConstraint("cout_pieces >= 0", name="cout_pieces_positif"),
        sa.CheckConstraint("statut <> 'affectee' OR technicien_id IS NOT NULL", name="affectee_has_technicien"),
        sa.Index("ix_intervention_statut_priorite_date_creation", "statut", "priorite", "date_creation", "id"),
        sa.Index("ix_intervention_date_creation", "date_creation", "id"),
        sa.Index("ix_intervention_priorite", "priorite"),
        sa.Index("ix_intervention_type", "type"),
        sa.Index("ix_intervention_technicien_id", "technicien_id", "statut"),
        sa.Index("ix_intervention_equipement_id", "equipement_id", "statut"),
        sa.Index("ix_intervention_client_id", "client_id", "date_creation"),
        sa.Index("ix_intervention_date_limite", "date_limite"),
        sa.Index("ix_intervention_date_cloture", "date_cloture", postgresql_where=sa.text("date_cloture IS NOT NULL")),
        sa.Index("ix_intervention_search_vector", "search_vector", postgresql_using="gin"),
        sa.Index(
            "uq_intervention_occurrence_key",
            "occurrence_key",
            unique=True,
            postgresql_where=sa.text("occurrence_key IS NOT NULL"),
        ),
        # What the lateness job scans: open, not yet announced late, by deadline.
        sa.Index(
            "ix_intervention_late_candidates",
            "date_limite",
            postgresql_where=sa.text(f"late_notified_at IS NULL AND statut IN {sql_in(OPEN_STATUTS)}"),
        ),
    )


class Historique(Base):
    """One row per change of an intervention, written in the same transaction. Append-only: a trigger
    refuses UPDATE, DELETE and TRUNCATE (migration 0001)."""

    __tablename__ = "historique"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    intervention_id: Mapped[int] = mapped_column(sa.ForeignKey("intervention.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(sa.String(30))
    statut: Mapped[str] = mapped_column(sa.String(20))  # the intervention's statut after the change
    ancien_statut: Mapped[str | None] = mapped_column(sa.String(20))  # before it, when it changed
    remarque: Mapped[str | None] = mapped_column(sa.Text)
    avant: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    apres: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # None: the scheduler or an event
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(500))
    horodatage: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"action IN {sql_in(ActionHistorique)}", name="action"),
        sa.Index("ix_historique_intervention_id", "intervention_id", "id"),
    )


class Commentaire(Base):
    __tablename__ = "commentaire"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    intervention_id: Mapped[int] = mapped_column(sa.ForeignKey("intervention.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    contenu: Mapped[str] = mapped_column(sa.Text)
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (sa.Index("ix_commentaire_intervention_id", "intervention_id", "id"),)


class IdempotencyKey(Base):
    """A creation retried with the same `Idempotency-Key` (per user) answers the first result."""

    __tablename__ = "idempotency_key"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    intervention_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (sa.Index("ix_idempotency_key_created_at", "created_at"),)


class TypeEtape(StrEnum):
    """What a checklist step asks for (planning's template vocabulary, DOMAIN.md §10)."""

    verification = "verification"
    mesure = "mesure"
    texte = "texte"
    photo = "photo"


class InterventionEtape(Base):
    """A checklist step of an intervention: copied from a planning template (a plan's occurrence, or a
    manager adding one), then filled by the assigned technician while the intervention is `en_cours`.
    A later change of the template does not alter the copy. `ordre` runs on across added templates."""

    __tablename__ = "intervention_etape"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    intervention_id: Mapped[int] = mapped_column(sa.ForeignKey("intervention.id", ondelete="RESTRICT"))
    checklist_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # the template it was copied from
    checklist_nom: Mapped[str | None] = mapped_column(sa.String(200))
    ordre: Mapped[int] = mapped_column(sa.Integer)
    type: Mapped[str] = mapped_column(sa.String(20))
    libelle: Mapped[str] = mapped_column(sa.String(255))
    obligatoire: Mapped[bool] = mapped_column(sa.Boolean)
    unite: Mapped[str | None] = mapped_column(sa.String(20))
    min: Mapped[float | None] = mapped_column(sa.Float)
    max: Mapped[float | None] = mapped_column(sa.Float)
    compteur_code: Mapped[str | None] = mapped_column(sa.String(50))
    # What was filled in (the one matching `type`), by whom and when (None: not yet).
    fait: Mapped[bool | None] = mapped_column(sa.Boolean)
    valeur_mesure: Mapped[float | None] = mapped_column(sa.Float)
    texte: Mapped[str | None] = mapped_column(sa.Text)
    document_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    hors_limites: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    rempli_par: Mapped[int | None] = mapped_column(sa.BigInteger)
    rempli_le: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.CheckConstraint(f"type IN {sql_in(TypeEtape)}", name="type"),
        sa.Index("uq_intervention_etape_intervention_id_ordre", "intervention_id", "ordre", unique=True),
    )


class ChecklistRef(Base):
    """Replica of planning's checklist templates (`planning.checklist.*.v1`): what a manager may add to
    an intervention. A deleted template stays as a tombstone so that a late older event cannot revive it."""

    __tablename__ = "checklist_ref"

    checklist_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    nom: Mapped[str] = mapped_column(sa.String(200))
    etapes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    supprime: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    version: Mapped[int] = mapped_column(sa.Integer)


class EquipementRef(Base):
    """Replica of assets' equipment (`assets.equipement.*.v1`, or one read-through on a miss)."""

    __tablename__ = "equipement_ref"

    id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    nom: Mapped[str] = mapped_column(sa.String(200))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    statut: Mapped[str] = mapped_column(sa.String(20))
    # assets' version of the row (0: learnt from a read-through, any event supersedes it).
    version: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.Index("ix_equipement_ref_client_id", "client_id"),)


class TechnicienRef(Base):
    """Replica of planning's technicians (`planning.technicien.*.v1`)."""

    __tablename__ = "technicien_ref"

    technicien_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    version: Mapped[int] = mapped_column(sa.Integer)

    __table_args__ = (sa.Index("ix_technicien_ref_user_id", "user_id"),)


class UserRef(Base):
    """Replica of auth's users (`auth.user.*.v1`), for the dashboard's user counts."""

    __tablename__ = "user_ref"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    role: Mapped[str] = mapped_column(sa.String(20))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    # The envelope time of the event it comes from: auth's events carry no version.
    event_time: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
