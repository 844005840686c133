"""The technicians' schedule: plan occurrences (past ones as emitted, coming ones projected from each
plan's next date and frequency, and a usage plan's next crossing at its forecast date) and the
interventions assigned to them (from the replica), as JSON entries or as an iCalendar (RFC 5545) feed."""

from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy.ext.asyncio import AsyncSession

from mif_common.db import session_settings
from mif_planning import compteurs_repository as compteurs_repo
from mif_planning import occurrences_repository as occurrences_repo
from mif_planning import replicas_repository as replicas_repo
from mif_planning import repository as repo
from mif_planning.config import PlanningSettings
from mif_planning.frequence import interval
from mif_planning.models import INTERVENTION_RESOLUE, Plan
from mif_planning.occurrences import occurrence_key
from mif_planning.regles import prochaine_date_estimee
from mif_planning.schemas import CalendrierEntree

# An occurrence has a date, not a duration; calendars show it as a one-hour slot from its due time.
OCCURRENCE_DURATION = timedelta(hours=1)
# An intervention with no end yet (no date_limite either) is shown as a one-hour slot.
INTERVENTION_DEFAULT_DURATION = timedelta(hours=1)
# Upper bound of the entries of one answer (a window of a year of daily plans stays far below).
MAX_ENTRIES = 5000

TITRE_PREVENTIF = "Maintenance préventive - {nom}"
TITRE_ESTIME = "Maintenance préventive (date estimée) - {nom}"


def _uid_time(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%SZ")


def _occurrence_entry(
    *,
    planning_id: int,
    due_at: datetime,
    key: str,
    statut: str,
    uid: str | None = None,
    technicien_id: int | None,
    equipement_id: int,
    equipement_nom: str | None,
    intervention_id: int | None,
) -> CalendrierEntree:
    return CalendrierEntree(
        uid=uid or f"occurrence-{planning_id}-{_uid_time(due_at)}",
        type="occurrence",
        titre=(TITRE_ESTIME if statut == "estimee" else TITRE_PREVENTIF).format(
            nom=equipement_nom or f"équipement n°{equipement_id}"
        ),
        debut=due_at,
        fin=due_at + OCCURRENCE_DURATION,
        statut=statut,
        technicien_id=technicien_id,
        equipement_id=equipement_id,
        equipement_nom=equipement_nom,
        planning_id=planning_id,
        occurrence_key=key,
        intervention_id=intervention_id,
        priorite=None,
    )


def projected_dates(plan: Plan, *, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """The plan's coming due dates in [start, end), from its next date on."""
    frequence, due = plan.calendrier()
    step = interval(frequence)
    if due < start:  # skip whole intervals instead of walking through them
        due += step * ((start - due) // step)
        while due < start:
            due += step
    dates: list[datetime] = []
    while due < end and len(dates) < limit:
        dates.append(due)
        due += step
    return dates


async def entries(
    session: AsyncSession, *, technicien_id: int | None, start: datetime, end: datetime
) -> list[CalendrierEntree]:
    """The schedule in [start, end): of one technician, or of everyone (`technicien_id` None)."""
    found: list[CalendrierEntree] = []
    emitted = (
        await session.execute(occurrences_repo.occurrences_query(technicien_id=technicien_id, start=start, end=end))
    ).all()
    plans = list(await session.scalars(repo.plans_in_window_query(technicien_id=technicien_id, end=end)))
    usage_plans = list(await session.scalars(repo.usage_plans_query(technicien_id=technicien_id)))
    fits = await compteurs_repo.ajustements(
        session,
        {p.compteur_id for p in usage_plans if p.compteur_id},
        jours=session_settings(session, PlanningSettings).prevision_fenetre_jours,
    )
    interventions = list(
        await session.scalars(
            replicas_repo.assigned_interventions_query(technicien_id=technicien_id, start=start, end=end)
        )
    )
    equipement_ids = {o.equipement_id for o, _ in emitted} | {p.equipement_id for p in plans + usage_plans}
    equipement_ids |= {i.equipement_id for i in interventions}
    noms = await replicas_repo.equipement_noms(session, equipement_ids)

    for occurrence, intervention_statut in emitted:
        if intervention_statut == "annulee":
            statut = "annulee"
        elif intervention_statut in INTERVENTION_RESOLUE:
            statut = "realisee"
        elif occurrence.overdue_at is not None and intervention_statut not in INTERVENTION_RESOLUE:
            statut = "en_retard"
        else:
            statut = "generee"
        found.append(
            _occurrence_entry(
                planning_id=occurrence.planning_id,
                due_at=occurrence.due_at,
                key=occurrence.occurrence_key,
                statut=statut,
                technicien_id=occurrence.technicien_id,
                equipement_id=occurrence.equipement_id,
                equipement_nom=noms.get(occurrence.equipement_id),
                intervention_id=occurrence.intervention_id,
            )
        )
    for plan in plans:
        for due in projected_dates(plan, start=start, end=end, limit=MAX_ENTRIES):
            found.append(
                _occurrence_entry(
                    planning_id=plan.id,
                    due_at=due,
                    key=occurrence_key(plan.id, due),
                    statut="prevue",
                    technicien_id=plan.technicien_id,
                    equipement_id=plan.equipement_id,
                    equipement_nom=noms.get(plan.equipement_id),
                    intervention_id=None,
                )
            )
    for plan in usage_plans:
        # A usage plan's next crossing, at the date its counter's recent rate forecasts (DOMAIN.md §10).
        estimee = prochaine_date_estimee(plan, fits.get(plan.compteur_id or 0))
        if estimee is None or not start <= estimee < end or plan.intervalle is None or plan.prochain_seuil is None:
            continue
        k = round(plan.prochain_seuil / plan.intervalle)
        found.append(
            _occurrence_entry(
                planning_id=plan.id,
                due_at=estimee.replace(microsecond=0),
                key=f"{plan.id}:u:{k}",
                statut="estimee",
                uid=f"occurrence-{plan.id}-u{k}",
                technicien_id=plan.technicien_id,
                equipement_id=plan.equipement_id,
                equipement_nom=noms.get(plan.equipement_id),
                intervention_id=None,
            )
        )
    for intervention in interventions:
        debut = intervention.started_at or intervention.created_at
        fin = intervention.ended_at or intervention.date_limite or debut + INTERVENTION_DEFAULT_DURATION
        if fin <= debut:
            fin = debut + INTERVENTION_DEFAULT_DURATION
        found.append(
            CalendrierEntree(
                uid=f"intervention-{intervention.intervention_id}",
                type="intervention",
                titre=intervention.titre or f"Intervention n°{intervention.intervention_id}",
                debut=debut,
                fin=fin,
                statut=intervention.statut,
                technicien_id=intervention.technicien_id,
                equipement_id=intervention.equipement_id,
                equipement_nom=noms.get(intervention.equipement_id),
                planning_id=intervention.planning_id,
                occurrence_key=None,
                intervention_id=intervention.intervention_id,
                priorite=intervention.priorite,
            )
        )
    found.sort(key=lambda e: (e.debut, e.uid))
    return found[:MAX_ENTRIES]


_ICAL_STATUS = {"annulee": "CANCELLED", "prevue": "TENTATIVE", "estimee": "TENTATIVE"}


def ical_feed(*, nom: str, entries: list[CalendrierEntree], generated_at: datetime) -> bytes:
    """An RFC 5545 calendar of the entries; UIDs are stable, so calendar apps update events in place."""
    calendar = Calendar()
    calendar.add("prodid", "-//MIF Maroc//Planning de maintenance//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"MIF - {nom}")
    calendar.add("x-wr-timezone", "UTC")
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for entry in entries:
        event = Event()
        event.add("uid", f"{entry.uid}@planning.mif.ma")
        event.add("dtstamp", generated_at)
        event.add("dtstart", entry.debut)
        event.add("dtend", entry.fin)
        event.add("summary", entry.titre)
        lines = [f"Équipement : {entry.equipement_nom or entry.equipement_id}", f"Statut : {entry.statut}"]
        if entry.priorite:
            lines.append(f"Priorité : {entry.priorite}")
        if entry.occurrence_key:
            lines.append(f"Occurrence : {entry.occurrence_key}")
        if entry.intervention_id:
            lines.append(f"Intervention n°{entry.intervention_id}")
        event.add("description", "\n".join(lines))
        event.add("categories", ["Maintenance préventive" if entry.type == "occurrence" else "Intervention"])
        event.add("status", _ICAL_STATUS.get(entry.statut, "CONFIRMED"))
        calendar.add_component(event)
    return bytes(calendar.to_ical())
