"""Tables of the planning schema: technicians and their competences, preventive plans and their
occurrences, and the replicas of what other services own (users, equipment, interventions)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mif_common.db import new_metadata
from mif_common.frequences import Frequence


class Disponibilite(StrEnum):
    disponible = "disponible"
    occupe = "occupe"
    conge = "conge"
    formation = "formation"
    indisponible = "indisponible"


# Set by a person and never overridden by intervention events (DOMAIN.md §4: `occupe` is derived).
DISPONIBILITES_MANUELLES = (Disponibilite.conge, Disponibilite.formation, Disponibilite.indisponible)


class Niveau(StrEnum):
    debutant = "debutant"
    intermediaire = "intermediaire"
    avance = "avance"
    expert = "expert"


NIVEAU_RANG = {Niveau.debutant: 1, Niveau.intermediaire: 2, Niveau.avance: 3, Niveau.expert: 4}


class StatutPlan(StrEnum):
    actif = "actif"
    suspendu = "suspendu"
    termine = "termine"
    en_retard = "en_retard"


class ActionHistorique(StrEnum):
    """What a row of a plan's history records."""

    creation = "creation"
    modification = "modification"  # PUT: the fields changed, before and after
    redatation = "redatation"  # PATCH .../dates: the old and the new next date
    suppression = "suppression"  # DELETE: the plan as it was
    occurrences_sautees = "occurrences_sautees"  # missed occurrences the scheduler did not generate
    suspension_automatique = "suspension_automatique"  # the circuit breaker suspended the plan


# Plans that generate occurrences: `en_retard` is an `actif` plan with an overdue occurrence, it keeps
# generating (stopping a late plan would make it later). `suspendu` and `termine` generate nothing.
STATUTS_GENERATEURS = (StatutPlan.actif, StatutPlan.en_retard)

# Intervention statuts (DOMAIN.md §2): open ones count as workload; `en_cours` makes a technician busy;
# resolved ones settle a plan occurrence (a cancelled one was a manager's decision, not a delay).
INTERVENTION_OUVERTE = ("ouverte", "affectee", "en_cours", "en_attente")
INTERVENTION_EN_COURS = "en_cours"
INTERVENTION_RESOLUE = ("cloturee", "annulee", "archivee")


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = new_metadata()


# --- replicas of other services' data -----------------------------------------------------------


class UserRef(Base):
    """Replica of auth's users, fed by `auth.user.*.v1` and, on a miss, by one question to auth."""

    __tablename__ = "user_ref"

    user_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(sa.String(50))
    email: Mapped[str] = mapped_column(sa.String(254))
    full_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    is_active: Mapped[bool] = mapped_column(sa.Boolean)
    token_version: Mapped[int] = mapped_column(sa.Integer)
    # When auth wrote what this row holds (the event's time, or the user's updated_at): older news never
    # overwrites newer (auth's events carry no version; token_version only moves on some changes).
    synced_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class EquipementRef(Base):
    """Replica of assets' equipment, fed by `assets.equipement.*.v1` and, on a miss, by one question to
    assets. A deleted equipment stays as a tombstone so that a late older event cannot revive it."""

    __tablename__ = "equipement_ref"

    equipement_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    nom: Mapped[str] = mapped_column(sa.String(200))
    # The equipment's free label ("compresseur"): the competence of that name or domain ranks technicians.
    type: Mapped[str | None] = mapped_column(sa.String(100))
    statut: Mapped[str] = mapped_column(sa.String(20))
    client_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    supprime: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    version: Mapped[int] = mapped_column(sa.Integer)  # 0 when learnt from assets' HTTP answer
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class InterventionRef(Base):
    """Replica of the interventions, fed by `interventions.intervention.*.v1`: availability, workload,
    the technicians' schedule and the follow-up of plan occurrences come from it."""

    __tablename__ = "intervention_ref"

    intervention_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    # No foreign keys: a replica row may arrive before, or outlive, what it points at.
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    equipement_id: Mapped[int] = mapped_column(sa.BigInteger)
    statut: Mapped[str] = mapped_column(sa.String(20))
    type: Mapped[str] = mapped_column(sa.String(30))
    titre: Mapped[str] = mapped_column(sa.String(255))
    priorite: Mapped[str] = mapped_column(sa.String(30))
    planning_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    date_limite: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Times of facts, as told by the events (the schedule places interventions with them).
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # When the fact behind this row happened at interventions; older events are ignored.
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("ix_intervention_ref_technicien_id_statut", "technicien_id", "statut"),
        sa.Index("ix_intervention_ref_equipement_id", "equipement_id"),
    )


# --- technicians and competences ----------------------------------------------------------------


class Competence(Base):
    __tablename__ = "competence"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    nom: Mapped[str] = mapped_column(sa.String(100))
    domaine: Mapped[str | None] = mapped_column(sa.String(100))
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (sa.Index("uq_competence_nom_lower", sa.func.lower(sa.text("nom")), unique=True),)


class Technicien(Base):
    """A technician's profile, 1:1 with an auth user of role `technicien`. Never deleted: `is_active`."""

    __tablename__ = "technicien"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user_ref.user_id", ondelete="RESTRICT"))
    equipe: Mapped[str | None] = mapped_column(sa.String(100))
    zone: Mapped[str | None] = mapped_column(sa.String(100))
    disponibilite: Mapped[str] = mapped_column(sa.String(20), server_default=Disponibilite.disponible.value)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    # SHA-256 of the secret of the technician's iCalendar feed URL (the secret itself is never stored).
    ical_token_hash: Mapped[str | None] = mapped_column(sa.String(64))
    ical_token_created_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Bumped on every change; published with each event so consumers can drop stale ones.
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    user: Mapped[UserRef] = relationship(lazy="joined", innerjoin=True)
    competences: Mapped[list[TechnicienCompetence]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="TechnicienCompetence.competence_id"
    )

    __table_args__ = (
        sa.CheckConstraint(f"disponibilite IN {_in(Disponibilite)}", name="disponibilite"),
        sa.Index("uq_technicien_user_id", "user_id", unique=True),
        sa.Index("uq_technicien_ical_token_hash", "ical_token_hash", unique=True),
        sa.Index("ix_technicien_disponibilite", "disponibilite"),
    )


class TechnicienCompetence(Base):
    """A competence of a technician, with its level."""

    __tablename__ = "technicien_competence"

    technicien_id: Mapped[int] = mapped_column(sa.ForeignKey("technicien.id", ondelete="CASCADE"), primary_key=True)
    competence_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competence.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    niveau: Mapped[str] = mapped_column(sa.String(20), server_default=Niveau.intermediaire.value)

    competence: Mapped[Competence] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (sa.CheckConstraint(f"niveau IN {_in(Niveau)}", name="niveau"),)


# --- preventive plans ---------------------------------------------------------------------------


class Plan(Base):
    """A preventive maintenance plan (the API's `planning` resource): an equipment, a frequency, the
    next due date, and optionally the technician who gets the generated interventions."""

    __tablename__ = "plan"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    equipement_id: Mapped[int] = mapped_column(sa.BigInteger)
    frequence: Mapped[str] = mapped_column(sa.String(20))
    prochaine_date: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    derniere_date: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    statut: Mapped[str] = mapped_column(sa.String(20), server_default=StatutPlan.actif.value)
    commentaire: Mapped[str | None] = mapped_column(sa.String(1000))
    technicien_id: Mapped[int | None] = mapped_column(sa.ForeignKey("technicien.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"statut IN {_in(StatutPlan)}", name="statut"),
        sa.CheckConstraint(f"frequence IN {_in(Frequence)}", name="frequence"),
        # The scheduler's question: generating plans whose next date has come.
        sa.Index(
            "ix_plan_due",
            "prochaine_date",
            postgresql_where=sa.text("statut IN ('actif', 'en_retard')"),
        ),
        sa.Index("ix_plan_equipement_id", "equipement_id"),
        sa.Index("ix_plan_technicien_id", "technicien_id"),
    )


class Occurrence(Base):
    """One due date of a plan, keyed `"<planning_id>:<due date ISO>"` (stable across re-runs and
    replicas). Created by the reminder (then `emitted_at` is still null) or by the due pass; each
    event about it is sent once, guarded by its timestamp column."""

    __tablename__ = "occurrence"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    occurrence_key: Mapped[str] = mapped_column(sa.String(100))
    planning_id: Mapped[int] = mapped_column(sa.ForeignKey("plan.id", ondelete="CASCADE"))
    equipement_id: Mapped[int] = mapped_column(sa.BigInteger)
    technicien_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    due_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    reminder_sent_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    emitted_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Past this, an occurrence whose intervention is not resolved is overdue.
    deadline_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    intervention_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    overdue_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (
        sa.Index("uq_occurrence_occurrence_key", "occurrence_key", unique=True),
        sa.Index("ix_occurrence_planning_id_due_at", "planning_id", "due_at"),
        sa.Index("ix_occurrence_intervention_id", "intervention_id"),
        sa.Index(
            "ix_occurrence_pending_deadline",
            "deadline_at",
            postgresql_where=sa.text("emitted_at IS NOT NULL AND overdue_at IS NULL"),
        ),
    )


class PlanHistorique(Base):
    """A plan's history: one row per change or scheduler decision, written in the transaction that made
    it. Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (migration 0003). No foreign key, so
    the history of a deleted plan outlives it (its last row says who deleted it)."""

    __tablename__ = "plan_historique"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    planning_id: Mapped[int] = mapped_column(sa.BigInteger)
    action: Mapped[str] = mapped_column(sa.String(30))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # None: the scheduler
    horodatage: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"action IN {_in(ActionHistorique)}", name="action"),
        sa.Index("ix_plan_historique_planning_id_id", "planning_id", "id"),
    )
