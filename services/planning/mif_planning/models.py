"""Tables of the planning schema: technicians and their competences, preventive plans (calendar, usage
and condition rules) and their occurrences, and the replicas of what other services own (users,
equipment, meters and their recent readings, interventions), checklist templates.

Longer than the ~450 lines of docs/service-guide.md on purpose: the schema's tables stay in one module,
the one `Base.metadata` the migrations and tests/test_migrations_match_models.py compare against."""

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


class Declencheur(StrEnum):
    """What makes a plan generate work (DOMAIN.md §5, §10)."""

    calendrier = "calendrier"  # a frequency and a next due date
    usage = "usage"  # every `intervalle` units of a counter (heures_marche, cycles, km)
    seuil = "seuil"  # a value beyond `seuil` for `duree_minutes`: a corrective intervention
    variation = "variation"  # a rate per hour beyond `seuil`, over a `duree_minutes` window: corrective


# Rules on a meter's readings (every kind but the calendar).
DECLENCHEURS_COMPTEUR = (Declencheur.usage, Declencheur.seuil, Declencheur.variation)
# Condition rules: a corrective intervention once per episode.
DECLENCHEURS_CONDITION = (Declencheur.seuil, Declencheur.variation)


class Operateur(StrEnum):
    superieur = ">"
    inferieur = "<"


class Priorite(StrEnum):
    """The priority of the corrective intervention a condition rule opens (interventions' vocabulary)."""

    urgente = "urgente"
    haute = "haute"
    normale = "normale"
    basse = "basse"


class NatureCompteur(StrEnum):
    compteur = "compteur"  # only increases (except a flagged reset)
    jauge = "jauge"


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


class CompteurRef(Base):
    """Replica of assets' meters, fed by `assets.compteur.*.v1` (a row first seen in a readings event is a
    placeholder of version 0, replaced by any real snapshot). Also the running state of a counter's
    usage, fed by `assets.releves.recorded.v1`: `usage_cumule` is the accumulated increments across
    resets (the counter's value until its first reset), at `dernier_horodatage`."""

    __tablename__ = "compteur_ref"

    compteur_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    equipement_id: Mapped[int] = mapped_column(sa.BigInteger)
    code: Mapped[str] = mapped_column(sa.String(100))
    nom: Mapped[str] = mapped_column(sa.String(200))
    nature: Mapped[str] = mapped_column(sa.String(20))
    unite: Mapped[str] = mapped_column(sa.String(30))
    supprime: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    version: Mapped[int] = mapped_column(sa.Integer)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    # Usage state (readings events only; a metadata snapshot never touches these columns).
    derniere_valeur: Mapped[float | None] = mapped_column(sa.Double)
    dernier_horodatage: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    usage_cumule: Mapped[float | None] = mapped_column(sa.Double)

    __table_args__ = (sa.Index("ix_compteur_ref_equipement_id", "equipement_id"),)


class ReleveRef(Base):
    """The recent readings of the meters a usage or rate-of-change rule watches (no other meter's): the
    forecast's least-squares fit and the rate windows read them. Kept for `releves_retention_days`
    behind each meter's latest reading, pruned as batches arrive. `usage` is the accumulated usage at
    that reading (counters; a gauge's value)."""

    __tablename__ = "releve_ref"

    compteur_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    horodatage: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    valeur: Mapped[float] = mapped_column(sa.Double)
    usage: Mapped[float] = mapped_column(sa.Double)


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


# --- checklist templates -----------------------------------------------------------------------


class TypeEtape(StrEnum):
    """What a checklist step asks for (DOMAIN.md §10)."""

    verification = "verification"  # yes / no
    mesure = "mesure"  # a number, with a unit and optional bounds
    texte = "texte"  # free text
    photo = "photo"  # a document attached to the intervention


class ChecklistModele(Base):
    """A checklist template: ordered steps, attached to plans and copied onto the interventions they
    generate (interventions keeps the copy; a later change of the template does not alter it)."""

    __tablename__ = "checklist_modele"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    nom: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.String(1000))
    # Bumped on every change; published with each event so consumers (interventions) drop stale ones.
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    created_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    etapes: Mapped[list[ChecklistEtape]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ChecklistEtape.ordre"
    )

    __table_args__ = (sa.Index("uq_checklist_modele_nom_lower", sa.func.lower(sa.text("nom")), unique=True),)


class ChecklistEtape(Base):
    """One step of a template; `ordre` runs 1..n without gaps (the service renumbers on every write)."""

    __tablename__ = "checklist_etape"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    checklist_id: Mapped[int] = mapped_column(sa.ForeignKey("checklist_modele.id", ondelete="CASCADE"))
    ordre: Mapped[int] = mapped_column(sa.Integer)
    type: Mapped[str] = mapped_column(sa.String(20))
    libelle: Mapped[str] = mapped_column(sa.String(255))
    obligatoire: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    # `mesure` only: the unit, the accepted bounds (either may be absent) and the meter it feeds.
    unite: Mapped[str | None] = mapped_column(sa.String(20))
    min: Mapped[float | None] = mapped_column(sa.Float)
    max: Mapped[float | None] = mapped_column(sa.Float)
    compteur_code: Mapped[str | None] = mapped_column(sa.String(50))

    __table_args__ = (
        sa.CheckConstraint(f"type IN {_in(TypeEtape)}", name="type"),
        sa.CheckConstraint("min IS NULL OR max IS NULL OR min <= max", name="bornes"),
        sa.Index("uq_checklist_etape_checklist_id_ordre", "checklist_id", "ordre", unique=True),
    )


# --- preventive plans ---------------------------------------------------------------------------


class Plan(Base):
    """A maintenance plan (the API's `planning` resource) on an equipment, and optionally the technician
    who gets the generated interventions. Its `declencheur` says what generates work: a frequency and
    the next due date (`calendrier`), a counter's usage (`usage`: every `intervalle` units), or a
    condition on a meter's readings (`seuil`, `variation`: a corrective intervention per episode)."""

    __tablename__ = "plan"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    equipement_id: Mapped[int] = mapped_column(sa.BigInteger)
    declencheur: Mapped[str] = mapped_column(sa.String(20), server_default=Declencheur.calendrier.value)
    # Calendar plans only (null for the other kinds).
    frequence: Mapped[str | None] = mapped_column(sa.String(20))
    prochaine_date: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    derniere_date: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    statut: Mapped[str] = mapped_column(sa.String(20), server_default=StatutPlan.actif.value)
    commentaire: Mapped[str | None] = mapped_column(sa.String(1000))
    technicien_id: Mapped[int | None] = mapped_column(sa.ForeignKey("technicien.id", ondelete="SET NULL"))
    # The checklist template copied onto every intervention the plan generates (a template in use by a
    # plan cannot be deleted: RESTRICT, and the service says which plans use it).
    checklist_id: Mapped[int | None] = mapped_column(sa.ForeignKey("checklist_modele.id", ondelete="RESTRICT"))
    created_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    # --- rules on a meter (usage, seuil, variation) ---
    compteur_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    # usage: every `intervalle` units of accumulated usage; the next crossing is `prochain_seuil`
    # (a multiple of `intervalle`: occurrence k = prochain_seuil / intervalle).
    intervalle: Mapped[float | None] = mapped_column(sa.Double)
    prochain_seuil: Mapped[float | None] = mapped_column(sa.Double)
    # seuil: value `operateur` `seuil` for `duree_minutes`; variation: rate per hour `operateur` `seuil`,
    # the rate fitted over a window of `duree_minutes`.
    operateur: Mapped[str | None] = mapped_column(sa.String(1))
    seuil: Mapped[float | None] = mapped_column(sa.Double)
    duree_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    priorite: Mapped[str | None] = mapped_column(sa.String(20))
    titre: Mapped[str | None] = mapped_column(sa.String(255))
    # Evaluation state of a condition rule: since when the readings have been beyond (null: within),
    # whether this episode already triggered; for every rule, the last reading evaluated (older ones,
    # arriving late, are not evaluated again).
    hors_limite_depuis: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    episode_declenche: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    dernier_releve: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"statut IN {_in(StatutPlan)}", name="statut"),
        sa.CheckConstraint(f"frequence IN {_in(Frequence)}", name="frequence"),
        sa.CheckConstraint(f"declencheur IN {_in(Declencheur)}", name="declencheur"),
        sa.CheckConstraint(
            "declencheur <> 'calendrier' OR (frequence IS NOT NULL AND prochaine_date IS NOT NULL)", name="calendrier"
        ),
        sa.CheckConstraint("declencheur = 'calendrier' OR compteur_id IS NOT NULL", name="compteur"),
        sa.CheckConstraint("declencheur <> 'usage' OR (intervalle > 0 AND prochain_seuil IS NOT NULL)", name="usage"),
        sa.CheckConstraint(
            "declencheur NOT IN ('seuil', 'variation') OR (operateur IN ('>', '<') AND seuil IS NOT NULL "
            "AND duree_minutes >= 0 AND priorite IS NOT NULL)",
            name="condition",
        ),
        # The scheduler's question: generating plans whose next date has come.
        sa.Index(
            "ix_plan_due",
            "prochaine_date",
            postgresql_where=sa.text("statut IN ('actif', 'en_retard')"),
        ),
        sa.Index("ix_plan_equipement_id", "equipement_id"),
        sa.Index("ix_plan_technicien_id", "technicien_id"),
        # The rules a batch of readings is evaluated against.
        sa.Index("ix_plan_compteur_id", "compteur_id", postgresql_where=sa.text("compteur_id IS NOT NULL")),
        sa.Index("ix_plan_checklist_id", "checklist_id"),
    )

    def calendrier(self) -> tuple[Frequence, datetime]:
        """A calendar plan's frequency and next due date (the scheduler, its reminders and the projected
        schedule only ever handle calendar plans: the others have no next date to claim them by)."""
        if self.frequence is None or self.prochaine_date is None:
            raise ValueError(f"plan {self.id} ({self.declencheur}) has no frequency or next date")
        return Frequence(self.frequence), self.prochaine_date


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
