"""Tables of the assets schema: client organisations, equipment, its status history, and the
replica of the interventions that reference equipment."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mif_common.db import new_metadata


class TypeClient(StrEnum):
    entreprise = "entreprise"
    collectivite = "collectivite"
    association = "association"
    particulier = "particulier"


class NiveauService(StrEnum):
    premium = "premium"
    standard = "standard"
    basique = "basique"


class StatutEquipement(StrEnum):
    operationnel = "operationnel"
    maintenance = "maintenance"
    panne = "panne"
    retire = "retire"


class Criticite(StrEnum):
    critique = "critique"
    important = "important"
    standard = "standard"
    non_critique = "non_critique"


class SourceStatut(StrEnum):
    api = "api"  # a manager's PUT
    event = "event"  # a side effect of an interventions event


# Intervention statuts that keep an equipment "in work" (DOMAIN.md §2, §4).
OPEN_INTERVENTION_STATUTS = ("ouverte", "affectee", "en_cours", "en_attente")

# Text searched by `q`, one expression per table: the trigram (GIN) indexes of the migration are built
# on exactly these expressions, and the list queries filter on them, so the planner can use them.
EQUIPEMENT_SEARCH_SQL = (
    "(nom || ' ' || type || ' ' || localisation || ' ' || coalesce(marque, '') || ' ' || coalesce(modele, '')"
    " || ' ' || coalesce(numero_serie, ''))"
)
CLIENT_SEARCH_SQL = (
    "(nom_entreprise || ' ' || coalesce(nom_contact, '') || ' ' || coalesce(email, '') || ' ' || coalesce(ville, '')"
    " || ' ' || coalesce(secteur_activite, ''))"
)


def _in(values: type[StrEnum]) -> str:
    return "(" + ", ".join(f"'{v.value}'" for v in values) + ")"


class Base(DeclarativeBase):
    metadata = new_metadata()


class Client(Base):
    """A client organisation: contact, contract and service level. Never deleted, only deactivated."""

    __tablename__ = "client"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    nom_entreprise: Mapped[str] = mapped_column(sa.String(200))
    type_client: Mapped[str] = mapped_column(sa.String(20), server_default=TypeClient.entreprise.value)
    secteur_activite: Mapped[str | None] = mapped_column(sa.String(100))
    nom_contact: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    telephone: Mapped[str | None] = mapped_column(sa.String(30))
    adresse: Mapped[str | None] = mapped_column(sa.String(500))
    ville: Mapped[str | None] = mapped_column(sa.String(100))
    pays: Mapped[str] = mapped_column(sa.String(100), server_default="Maroc")
    niveau_service: Mapped[str] = mapped_column(sa.String(20), server_default=NiveauService.standard.value)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    contrat_debut: Mapped[date | None] = mapped_column(sa.Date)
    contrat_fin: Mapped[date | None] = mapped_column(sa.Date)
    type_contrat: Mapped[str | None] = mapped_column(sa.String(100))
    # Bumped on every change; published with each event so consumers can drop stale ones.
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"type_client IN {_in(TypeClient)}", name="type_client"),
        sa.CheckConstraint(f"niveau_service IN {_in(NiveauService)}", name="niveau_service"),
        sa.CheckConstraint("contrat_fin > contrat_debut", name="contrat_fin_after_debut"),
        sa.Index("uq_client_nom_entreprise_lower", sa.func.lower(sa.text("nom_entreprise")), unique=True),
        # `q`'s trigram index (pg_trgm lives in `public`, hence the qualified operator class).
        sa.Index("ix_client_search_trgm", sa.text(f"{CLIENT_SEARCH_SQL} public.gin_trgm_ops"), postgresql_using="gin"),
    )


class Equipement(Base):
    __tablename__ = "equipement"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    nom: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[str] = mapped_column(sa.String(100))
    localisation: Mapped[str] = mapped_column(sa.String(200))
    numero_serie: Mapped[str | None] = mapped_column(sa.String(100))
    marque: Mapped[str | None] = mapped_column(sa.String(100))
    modele: Mapped[str | None] = mapped_column(sa.String(100))
    statut: Mapped[str] = mapped_column(sa.String(20), server_default=StatutEquipement.operationnel.value)
    criticite: Mapped[str] = mapped_column(sa.String(20), server_default=Criticite.standard.value)
    client_id: Mapped[int | None] = mapped_column(sa.ForeignKey("client.id", ondelete="RESTRICT"))
    frequence_entretien: Mapped[int | None] = mapped_column(sa.Integer)  # days
    date_mise_en_service: Mapped[date | None] = mapped_column(sa.Date)
    date_fin_garantie: Mapped[date | None] = mapped_column(sa.Date)
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"statut IN {_in(StatutEquipement)}", name="statut"),
        sa.CheckConstraint(f"criticite IN {_in(Criticite)}", name="criticite"),
        sa.CheckConstraint("frequence_entretien BETWEEN 1 AND 3650", name="frequence_entretien_days"),
        sa.CheckConstraint("date_fin_garantie >= date_mise_en_service", name="garantie_after_mise_en_service"),
        sa.Index("uq_equipement_nom_lower", sa.func.lower(sa.text("nom")), unique=True),
        # NULLs never collide: "unique when given".
        sa.Index("uq_equipement_numero_serie_lower", sa.func.lower(sa.text("numero_serie")), unique=True),
        sa.Index("ix_equipement_statut", "statut"),
        sa.Index("ix_equipement_criticite", "criticite"),
        sa.Index("ix_equipement_client_id_statut", "client_id", "statut"),
        sa.Index("ix_equipement_type_lower", sa.func.lower(sa.text("type"))),
        sa.Index("ix_equipement_localisation_lower", sa.func.lower(sa.text("localisation"))),
        # `q`'s trigram index (pg_trgm lives in `public`, hence the qualified operator class).
        sa.Index(
            "ix_equipement_search_trgm", sa.text(f"{EQUIPEMENT_SEARCH_SQL} public.gin_trgm_ops"), postgresql_using="gin"
        ),
    )


class EquipementStatutHistorique(Base):
    """One row per transition of an equipment's `statut`: who, when, why. Append-only (a trigger
    refuses UPDATE and any DELETE other than the cascade of a deleted equipment)."""

    __tablename__ = "equipement_statut_historique"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    equipement_id: Mapped[int] = mapped_column(sa.ForeignKey("equipement.id", ondelete="CASCADE"))
    ancien_statut: Mapped[str | None] = mapped_column(sa.String(20))  # None for the creation row
    nouveau_statut: Mapped[str] = mapped_column(sa.String(20))
    motif: Mapped[str | None] = mapped_column(sa.String(500))
    source: Mapped[str] = mapped_column(sa.String(10))
    user_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    event_id: Mapped[str | None] = mapped_column(sa.String(100))
    horodatage: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"source IN {_in(SourceStatut)}", name="source"),
        sa.CheckConstraint(f"nouveau_statut IN {_in(StatutEquipement)}", name="nouveau_statut"),
        sa.Index("ix_equipement_statut_historique_equipement_time", "equipement_id", "horodatage"),
    )


class InterventionRef(Base):
    """Replica of the interventions that reference equipment, fed by `interventions.intervention.*`."""

    __tablename__ = "intervention_ref"

    intervention_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    # No foreign key: a replica row may arrive before, or outlive, what it points at.
    equipement_id: Mapped[int] = mapped_column(sa.BigInteger)
    statut: Mapped[str] = mapped_column(sa.String(20))
    # When the fact behind this row happened at the interventions service; older events are ignored.
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.Index("ix_intervention_ref_equipement_id_statut", "equipement_id", "statut"),)


class NatureCompteur(StrEnum):
    compteur = "compteur"  # only increases (running hours, cycles, km), except a flagged reset
    jauge = "jauge"  # any value (temperature, vibration, pressure, ...)


class SourceReleve(StrEnum):
    manuel = "manuel"
    api = "api"
    mqtt = "mqtt"


# Codes that are counters unless the manager says otherwise.
CODES_COMPTEUR = frozenset({"heures_marche", "cycles", "km"})


class Compteur(Base):
    """A meter of an equipment: a counter (`compteur`) or a gauge (`jauge`), identified on its equipment
    by `code` (the last segment of its MQTT topic)."""

    __tablename__ = "compteur"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    equipement_id: Mapped[int] = mapped_column(sa.ForeignKey("equipement.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(sa.String(50))
    nom: Mapped[str] = mapped_column(sa.String(200))
    nature: Mapped[str] = mapped_column(sa.String(10))
    unite: Mapped[str] = mapped_column(sa.String(20))
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    date_creation: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    date_modification: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (
        sa.CheckConstraint(f"nature IN {_in(NatureCompteur)}", name="nature"),
        sa.CheckConstraint("code ~ '^[a-z0-9_]+$'", name="code_format"),
        sa.UniqueConstraint("equipement_id", "code"),
    )


class Releve(Base):
    """One reading of a meter; (meter, instant) is its identity, so a re-sent reading is ignored."""

    __tablename__ = "releve"

    compteur_id: Mapped[int] = mapped_column(
        sa.ForeignKey("compteur.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    horodatage: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
    valeur: Mapped[float] = mapped_column(sa.Double)
    source: Mapped[str] = mapped_column(sa.String(10))
    remise_a_zero: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())

    __table_args__ = (sa.CheckConstraint(f"source IN {_in(SourceReleve)}", name="source"),)


class _Rollup:
    """What a rollup row holds for its meter and period: enough for min, mean, max and count of any
    union of periods. The meter leads the primary key (`sort_order`): every read is one meter's range."""

    compteur_id: Mapped[int] = mapped_column(
        sa.ForeignKey("compteur.id", ondelete="CASCADE"), primary_key=True, autoincrement=False, sort_order=-1
    )
    min: Mapped[float] = mapped_column(sa.Double)
    max: Mapped[float] = mapped_column(sa.Double)
    somme: Mapped[float] = mapped_column(sa.Double)
    nombre: Mapped[int] = mapped_column(sa.Integer)


class ReleveHoraire(_Rollup, Base):
    """Hourly rollup of a meter's readings (UTC hours), kept in the transaction that inserts them: the
    downsampled history (`pas` of whole hours) reads these rows, not the readings."""

    __tablename__ = "releve_horaire"

    heure: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)


class ReleveJour(_Rollup, Base):
    """Daily rollup (UTC days), kept beside the hourly one by the same statement: a history in steps of
    whole days reads these rows (365 for a year, where the hours are 8,760)."""

    __tablename__ = "releve_jour"

    jour: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), primary_key=True)
