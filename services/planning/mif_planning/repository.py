"""Queries of the planning service."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.listing import ListQuery, Statement, model_columns
from mif_common.pagination import Sortable
from mif_common.replicas import Replica, not_older
from mif_planning.models import (
    INTERVENTION_EN_COURS,
    INTERVENTION_OUVERTE,
    INTERVENTION_RESOLUE,
    STATUTS_GENERATEURS,
    ActionHistorique,
    Competence,
    EquipementRef,
    InterventionRef,
    Occurrence,
    Plan,
    PlanHistorique,
    Technicien,
    TechnicienCompetence,
    UserRef,
)
from mif_planning.schemas import CompetenceOut


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's own wildcards escaped (`\\` is the escape character)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- replicas -----------------------------------------------------------------------------------


async def user_ref(session: AsyncSession, user_id: int) -> UserRef | None:
    return await session.get(UserRef, user_id, populate_existing=True)


async def upsert_user_ref(session: AsyncSession, **values: Any) -> bool:
    """Insert or update a user, unless the replica holds later news (by auth's clock: the event's time
    or the user's `updated_at`); False when stale."""
    insert = pg_insert(UserRef).values(**values)
    upsert = insert.on_conflict_do_update(
        index_elements=[UserRef.user_id],
        set_={k: insert.excluded[k] for k in values if k != "user_id"},
        where=UserRef.synced_at <= insert.excluded.synced_at,
    ).returning(UserRef.user_id)
    return await session.scalar(upsert) is not None


async def equipement_ref(session: AsyncSession, equipement_id: int) -> EquipementRef | None:
    return await session.get(EquipementRef, equipement_id, populate_existing=True)


async def equipement_noms(session: AsyncSession, ids: Collection[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await session.execute(
        sa.select(EquipementRef.equipement_id, EquipementRef.nom).where(EquipementRef.equipement_id.in_(ids))
    )
    return {r.equipement_id: r.nom for r in rows}


async def upsert_equipement_ref(session: AsyncSession, **values: Any) -> bool:
    """Insert or update an equipment unless the replica holds a later state; False when stale."""
    insert = pg_insert(EquipementRef).values(**values)
    upsert = insert.on_conflict_do_update(
        index_elements=[EquipementRef.equipement_id],
        set_={k: insert.excluded[k] for k in values if k != "equipement_id"},
        where=sa.or_(
            EquipementRef.updated_at < insert.excluded.updated_at,
            sa.and_(
                EquipementRef.updated_at == insert.excluded.updated_at,
                EquipementRef.version <= insert.excluded.version,
            ),
        ),
    ).returning(EquipementRef.equipement_id)
    return await session.scalar(upsert) is not None


# Run for every intervention event: compiled once, run on the asyncpg connection (mif_common.replicas).
_INTERVENTION_LOCKED = Statement(
    lambda: (
        sa.select(InterventionRef.technicien_id, InterventionRef.statut)
        .where(InterventionRef.intervention_id == sa.bindparam("intervention_id", type_=sa.BigInteger()))
        .with_for_update()
    ),
    ["intervention_id"],
)


async def intervention_ref_locked(session: AsyncSession, intervention_id: int) -> Any:
    """(technicien_id, statut) of a replica row, locked until the transaction ends, or None."""
    rows = await _INTERVENTION_LOCKED.fetch(await session.connection(), {"intervention_id": intervention_id})
    return rows[0] if rows else None


# First-seen and start/end times are kept once known.
INTERVENTIONS = Replica(
    InterventionRef,
    key="intervention_id",
    newer=not_older("occurred_at"),
    merge={
        "created_at": lambda table, excluded: sa.func.least(table.c.created_at, excluded.created_at),
        "started_at": lambda table, excluded: sa.func.coalesce(table.c.started_at, excluded.started_at),
        "ended_at": lambda table, excluded: sa.case(
            # Constants, not an expanding IN list: the statement is compiled once for every call.
            (
                excluded.statut.in_([sa.literal(s) for s in INTERVENTION_RESOLUE]),
                sa.func.coalesce(table.c.ended_at, excluded.ended_at),
            ),
            else_=None,
        ),
    },
)


async def upsert_intervention_ref(session: AsyncSession, *, values: dict[str, Any]) -> bool:
    """Insert or update one intervention unless the replica already holds a later fact; False when
    stale."""
    return await INTERVENTIONS.upsert(session, values) is not None


_EN_COURS = Statement(
    lambda: sa.select(
        sa.exists().where(
            InterventionRef.technicien_id == sa.bindparam("technicien_id", type_=sa.BigInteger()),
            InterventionRef.statut == INTERVENTION_EN_COURS,
        )
    ),
    ["technicien_id"],
)


async def has_intervention_en_cours(session: AsyncSession, technicien_id: int) -> bool:
    rows = await _EN_COURS.fetch(await session.connection(), {"technicien_id": technicien_id})
    return bool(rows[0][0])


async def workloads(session: AsyncSession, technicien_ids: Collection[int]) -> dict[int, int]:
    """Open interventions assigned to each technician (absent: none)."""
    if not technicien_ids:
        return {}
    rows = await session.execute(
        sa.select(InterventionRef.technicien_id, sa.func.count())
        .where(
            InterventionRef.technicien_id.in_(technicien_ids),
            InterventionRef.statut.in_(INTERVENTION_OUVERTE),
        )
        .group_by(InterventionRef.technicien_id)
    )
    return {int(tid): int(n) for tid, n in rows if tid is not None}


async def interventions_on_equipement(session: AsyncSession, equipement_id: int) -> dict[int, int]:
    """How many interventions each technician had on one equipment (any statut)."""
    rows = await session.execute(
        sa.select(InterventionRef.technicien_id, sa.func.count())
        .where(InterventionRef.equipement_id == equipement_id, InterventionRef.technicien_id.is_not(None))
        .group_by(InterventionRef.technicien_id)
    )
    return {int(tid): int(n) for tid, n in rows if tid is not None}


def assigned_interventions_query(
    *, technicien_id: int | None, start: datetime, end: datetime
) -> sa.Select[InterventionRef]:
    """Assigned, not cancelled interventions whose time span meets [start, end)."""
    debut = sa.func.coalesce(InterventionRef.started_at, InterventionRef.created_at)
    fin = sa.func.coalesce(InterventionRef.ended_at, InterventionRef.date_limite, debut)
    query = sa.select(InterventionRef).where(
        InterventionRef.technicien_id.is_not(None),
        InterventionRef.statut != "annulee",
        debut < end,
        sa.or_(fin >= start, InterventionRef.statut.in_(INTERVENTION_OUVERTE)),
    )
    if technicien_id is not None:
        query = query.where(InterventionRef.technicien_id == technicien_id)
    return query.order_by(debut, InterventionRef.intervention_id)


# --- competences --------------------------------------------------------------------------------


async def competence_by_id(session: AsyncSession, competence_id: int, *, for_update: bool = False) -> Competence | None:
    query = sa.select(Competence).where(Competence.id == competence_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def competences_by_ids(session: AsyncSession, ids: Collection[int]) -> dict[int, Competence]:
    if not ids:
        return {}
    rows = await session.scalars(sa.select(Competence).where(Competence.id.in_(ids)))
    return {c.id: c for c in rows}


async def competence_named(session: AsyncSession, nom: str, *, except_id: int | None = None) -> Competence | None:
    query = sa.select(Competence).where(sa.func.lower(Competence.nom) == nom.lower())
    if except_id is not None:
        query = query.where(Competence.id != except_id)
    return await session.scalar(query)


async def competence_for_type(session: AsyncSession, equipement_type: str) -> Competence | None:
    """The competence an equipment type calls for: the one named like the type, else the one whose
    domain is the type (case-insensitive; the lowest id when several share that domain)."""
    label = equipement_type.strip().lower()
    named = sa.func.lower(Competence.nom) == label  # at most one: names are unique, case-insensitively
    return await session.scalar(
        sa.select(Competence)
        .where(sa.or_(named, sa.func.lower(Competence.domaine) == label))
        .order_by(named.desc(), Competence.id)
        .limit(1)
    )


def competences_list(sort: Mapping[str, Sortable]) -> ListQuery:
    """The competences list (mif_common.listing): rows as `CompetenceOut`'s fields. `q` has no index to
    find its matches with (a scan either way), hence no `search`."""
    text = sa.func.concat_ws(" ", Competence.nom, Competence.domaine, Competence.description)
    return ListQuery(
        columns=model_columns(CompetenceOut, Competence),
        source=Competence,
        key=Competence.id,
        terms={
            "domaine": lambda: sa.func.lower(Competence.domaine) == sa.bindparam("domaine", type_=sa.String()),
            "q": lambda: text.ilike(sa.bindparam("q", type_=sa.String()), escape="\\"),
        },
        sort=sort,
        default=[Competence.id],
        search=(),
    )


def competences_terms(*, domaine: str | None, q: str | None) -> dict[str, Any]:
    terms: dict[str, Any] = {}
    if domaine is not None:
        terms["domaine"] = domaine.lower()
    if q is not None:
        terms["q"] = like_pattern(q)
    return terms


async def competence_holders(session: AsyncSession, competence_id: int) -> list[int]:
    """Ids of the technicians holding a competence."""
    rows = await session.scalars(
        sa.select(TechnicienCompetence.technicien_id).where(TechnicienCompetence.competence_id == competence_id)
    )
    return list(rows)


# --- techniciens --------------------------------------------------------------------------------


async def technicien_by_id(session: AsyncSession, technicien_id: int, *, for_update: bool = False) -> Technicien | None:
    query = sa.select(Technicien).where(Technicien.id == technicien_id)
    if for_update:
        # Locked reads always see the committed row, never a stale object of the identity map.
        query = query.with_for_update(of=Technicien).execution_options(populate_existing=True)
    return await session.scalar(query)


async def technicien_of_user(session: AsyncSession, user_id: int, *, for_update: bool = False) -> Technicien | None:
    query = sa.select(Technicien).where(Technicien.user_id == user_id)
    if for_update:
        query = query.with_for_update(of=Technicien).execution_options(populate_existing=True)
    return await session.scalar(query)


async def technicien_by_token_hash(session: AsyncSession, token_hash: str) -> Technicien | None:
    return await session.scalar(sa.select(Technicien).where(Technicien.ical_token_hash == token_hash))


async def lock_techniciens(session: AsyncSession, ids: Collection[int]) -> list[Technicien]:
    """Lock technicians in id order (no deadlock between two transactions locking the same ones)."""
    if not ids:
        return []
    rows = await session.scalars(
        sa.select(Technicien)
        .where(Technicien.id.in_(ids))
        .order_by(Technicien.id)
        .with_for_update(of=Technicien)
        .execution_options(populate_existing=True)
    )
    return list(rows.unique())


async def lock_disponibilites(session: AsyncSession, ids: Collection[int]) -> list[Any]:
    """(id, is_active, disponibilite) of technicians, locked in id order: what deciding their
    availability needs, without loading the profiles."""
    if not ids:
        return []
    return await _DISPONIBILITES_LOCKED.fetch(await session.connection(), {"ids": sorted(ids)})


_DISPONIBILITES_LOCKED = Statement(
    lambda: (
        sa.select(Technicien.id, Technicien.is_active, Technicien.disponibilite)
        .where(Technicien.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger()))))
        .order_by(Technicien.id)
        .with_for_update()
    ),
    ["ids"],
)


def techniciens_query(
    *,
    only_id: int | None,
    disponibilite: Sequence[str],
    equipe: str | None,
    zone: str | None,
    competence_id: int | None,
    is_active: bool | None,
    q: str | None,
) -> sa.Select[Technicien]:
    """The technician list; `only_id` restricts it to one profile (a technician's own)."""
    query = sa.select(Technicien).join(Technicien.user)
    if only_id is not None:
        query = query.where(Technicien.id == only_id)
    if disponibilite:
        query = query.where(Technicien.disponibilite.in_(disponibilite))
    if equipe is not None:
        query = query.where(sa.func.lower(Technicien.equipe) == equipe.lower())
    if zone is not None:
        query = query.where(sa.func.lower(Technicien.zone) == zone.lower())
    if competence_id is not None:
        query = query.where(
            sa.exists().where(
                TechnicienCompetence.technicien_id == Technicien.id,
                TechnicienCompetence.competence_id == competence_id,
            )
        )
    if is_active is not None:
        query = query.where(Technicien.is_active.is_(is_active))
    if q is not None:
        text = sa.func.concat_ws(
            " ", UserRef.username, UserRef.full_name, UserRef.email, Technicien.equipe, Technicien.zone
        )
        query = query.where(text.ilike(like_pattern(q), escape="\\"))
    return query


async def candidate_techniciens(session: AsyncSession, disponibilites: Sequence[str]) -> list[Technicien]:
    """Active technicians of active technician users, in the given availabilities."""
    rows = await session.scalars(
        sa.select(Technicien)
        .join(Technicien.user)
        .where(
            Technicien.is_active.is_(True),
            Technicien.disponibilite.in_(disponibilites),
            UserRef.is_active.is_(True),
            UserRef.role == "technicien",
        )
        .order_by(Technicien.id)
    )
    return list(rows.unique())


async def techniciens_by_ids(session: AsyncSession, ids: Collection[int]) -> dict[int, Technicien]:
    if not ids:
        return {}
    rows = await session.scalars(sa.select(Technicien).where(Technicien.id.in_(ids)))
    return {t.id: t for t in rows.unique()}


# --- plans --------------------------------------------------------------------------------------


async def plan_by_id(session: AsyncSession, plan_id: int, *, for_update: bool = False) -> Plan | None:
    query = sa.select(Plan).where(Plan.id == plan_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


def plans_query(
    *,
    only_technicien_id: int | None,
    statut: Sequence[str],
    frequence: str | None,
    equipement_id: int | None,
    technicien_id: int | None,
    due_before: datetime | None,
) -> sa.Select[Plan]:
    query = sa.select(Plan)
    if only_technicien_id is not None:
        query = query.where(Plan.technicien_id == only_technicien_id)
    if statut:
        query = query.where(Plan.statut.in_(statut))
    if frequence is not None:
        query = query.where(Plan.frequence == frequence)
    if equipement_id is not None:
        query = query.where(Plan.equipement_id == equipement_id)
    if technicien_id is not None:
        query = query.where(Plan.technicien_id == technicien_id)
    if due_before is not None:
        query = query.where(Plan.prochaine_date <= due_before)
    return query


async def plans_of_equipement(session: AsyncSession, equipement_id: int, statuts: Sequence[str]) -> list[Plan]:
    rows = await session.scalars(
        sa.select(Plan)
        .where(Plan.equipement_id == equipement_id, Plan.statut.in_(statuts))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


def plans_in_window_query(*, technicien_id: int | None, end: datetime) -> sa.Select[Plan]:
    """Generating plans whose next occurrence comes before `end` (the schedule projects them)."""
    query = sa.select(Plan).where(Plan.statut.in_(STATUTS_GENERATEURS), Plan.prochaine_date < end)
    if technicien_id is not None:
        query = query.where(Plan.technicien_id == technicien_id)
    return query.order_by(Plan.id)


# --- a plan's history ----------------------------------------------------------------------------


async def add_historique(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append rows to plans' history (one statement, its parameters apart)."""
    if rows:
        await session.execute(sa.insert(PlanHistorique), list(rows))


def historique_query(planning_id: int) -> sa.Select[PlanHistorique]:
    return sa.select(PlanHistorique).where(PlanHistorique.planning_id == planning_id)


async def emitted_between(session: AsyncSession, planning_id: int, *, after: datetime, until: datetime) -> int:
    """How many occurrences of a plan were generated in (after, until], counted from the circuit breaker's
    last suspension of the plan instead when that is later (one statement)."""
    last_suspension = (
        sa.select(sa.func.max(PlanHistorique.horodatage))
        .where(
            PlanHistorique.planning_id == planning_id,
            PlanHistorique.action == ActionHistorique.suspension_automatique.value,
        )
        .scalar_subquery()
    )
    # GREATEST ignores a NULL: a plan never suspended counts from `after`.
    start = sa.func.greatest(sa.literal(after, type_=Occurrence.emitted_at.type), last_suspension)
    value = await session.scalar(
        sa.select(sa.func.count())
        .select_from(Occurrence)
        .where(Occurrence.planning_id == planning_id, Occurrence.emitted_at > start, Occurrence.emitted_at <= until)
    )
    return int(value or 0)


# --- the scheduler's claims (FOR UPDATE SKIP LOCKED: replicas never wait for nor double each other) --


async def claim_due_plan(session: AsyncSession, *, now: datetime, skip: Collection[int]) -> Plan | None:
    """One generating plan whose next date has come, locked; plans another replica holds are skipped."""
    query = (
        sa.select(Plan)
        .where(Plan.statut.in_(STATUTS_GENERATEURS), Plan.prochaine_date <= now)
        .order_by(Plan.prochaine_date, Plan.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(Plan.id.not_in(skip))
    return await session.scalar(query)


async def claim_reminder_plan(
    session: AsyncSession, *, now: datetime, horizon: datetime, skip: Collection[int]
) -> Plan | None:
    """One generating plan due within (now, horizon] whose next occurrence had no reminder yet, locked."""
    reminded = (
        sa.select(Occurrence.id)
        .where(
            Occurrence.planning_id == Plan.id,
            Occurrence.due_at == Plan.prochaine_date,
            Occurrence.reminder_sent_at.is_not(None),
        )
        .exists()
    )
    query = (
        sa.select(Plan)
        .where(
            Plan.statut.in_(STATUTS_GENERATEURS),
            Plan.prochaine_date > now,
            Plan.prochaine_date <= horizon,
            ~reminded,
        )
        .order_by(Plan.prochaine_date, Plan.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    if skip:
        query = query.where(Plan.id.not_in(skip))
    return await session.scalar(query)


async def claim_overdue_occurrence(session: AsyncSession, *, now: datetime) -> Occurrence | None:
    """One emitted occurrence past its deadline, not yet reported, whose intervention is not resolved."""
    resolved = (
        sa.select(InterventionRef.intervention_id)
        .where(
            InterventionRef.intervention_id == Occurrence.intervention_id,
            InterventionRef.statut.in_(INTERVENTION_RESOLUE),
        )
        .exists()
    )
    query = (
        sa.select(Occurrence)
        .where(
            Occurrence.emitted_at.is_not(None),
            Occurrence.overdue_at.is_(None),
            Occurrence.deadline_at <= now,
            ~resolved,
        )
        .order_by(Occurrence.deadline_at, Occurrence.id)
        .limit(1)
        .with_for_update(of=Occurrence, skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(query)


async def record_occurrence(session: AsyncSession, *, values: dict[str, Any], stamp: str) -> bool:
    """Create the occurrence or stamp an existing one (`emitted_at` or `reminder_sent_at`), only if that
    stamp is still empty: True exactly once per occurrence key and stamp."""
    insert = pg_insert(Occurrence).values(**values)
    column = getattr(Occurrence, stamp)
    upsert = insert.on_conflict_do_update(
        index_elements=["occurrence_key"],
        set_={k: insert.excluded[k] for k in values if k not in ("occurrence_key", "reminder_sent_at", "emitted_at")}
        | {stamp: insert.excluded[stamp]},
        where=column.is_(None),
    ).returning(Occurrence.id)
    return await session.scalar(upsert) is not None


async def occurrence_by_key(session: AsyncSession, key: str) -> Occurrence | None:
    return await session.scalar(sa.select(Occurrence).where(Occurrence.occurrence_key == key))


async def occurrence_by_id(session: AsyncSession, occurrence_id: int, *, for_update: bool = False) -> Occurrence | None:
    query = sa.select(Occurrence).where(Occurrence.id == occurrence_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def occurrence_of_intervention(session: AsyncSession, intervention_id: int) -> Occurrence | None:
    return await session.scalar(
        sa.select(Occurrence)
        .where(Occurrence.intervention_id == intervention_id)
        .execution_options(populate_existing=True)
    )


async def oldest_unlinked_occurrence(
    session: AsyncSession, *, planning_id: int | None, equipement_id: int | None
) -> Occurrence | None:
    """The oldest emitted occurrence still waiting for its intervention, of one plan or one equipment."""
    query = sa.select(Occurrence).where(Occurrence.emitted_at.is_not(None), Occurrence.intervention_id.is_(None))
    if planning_id is not None:
        query = query.where(Occurrence.planning_id == planning_id)
    if equipement_id is not None:
        query = query.where(Occurrence.equipement_id == equipement_id)
    return await session.scalar(query.order_by(Occurrence.due_at, Occurrence.id).limit(1))


async def has_open_overdue(session: AsyncSession, planning_id: int) -> bool:
    """Whether a plan still has an overdue occurrence whose intervention is not resolved."""
    resolved = (
        sa.select(InterventionRef.intervention_id)
        .where(
            InterventionRef.intervention_id == Occurrence.intervention_id,
            InterventionRef.statut.in_(INTERVENTION_RESOLUE),
        )
        .exists()
    )
    return bool(
        await session.scalar(
            sa.select(
                sa.exists().where(Occurrence.planning_id == planning_id, Occurrence.overdue_at.is_not(None), ~resolved)
            )
        )
    )


def occurrences_query(*, technicien_id: int | None, start: datetime, end: datetime) -> sa.Select[Occurrence, str]:
    """Emitted occurrences due in [start, end), with the statut of their intervention."""
    query = (
        sa.select(Occurrence, InterventionRef.statut)
        .outerjoin(InterventionRef, InterventionRef.intervention_id == Occurrence.intervention_id)
        .where(Occurrence.emitted_at.is_not(None), Occurrence.due_at >= start, Occurrence.due_at < end)
    )
    if technicien_id is not None:
        query = query.where(Occurrence.technicien_id == technicien_id)
    return query.order_by(Occurrence.due_at, Occurrence.id)
