"""Response bodies of `GET /dashboard/stats` and `GET /dashboard/kpis` (mif_interventions.dashboard).

They describe what the dashboard already returned as plain dicts: same keys, in the same order, so the
JSON is unchanged. Maps keyed by a vocabulary (statut, priorite, type) stay maps: their keys are the
vocabulary's values, every one present.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

# --- /dashboard/stats (DOMAIN.md §8) -------------------------------------------------------------------


class InterventionCounts(BaseModel):
    ouverte: int = Field(description="`ouverte` and `affectee` (not started).")
    en_cours: int
    en_attente: int
    terminees: int = Field(description="Closed (`date_cloture` set), archived or not.")
    total_mensuel: int = Field(description="Created since the first of this month (UTC).")
    terminees_mensuel: int = Field(description="Closed since the first of this month (UTC).")


class MonthTotal(BaseModel):
    month: str = Field(description="`YYYY-MM`.")
    total: int = Field(description="Interventions created that month.")


class PriorityCounts(BaseModel):
    urgente: int
    haute: int
    normale: int
    basse: int


class EquipementCounts(BaseModel):
    total: int
    operationnel: int
    maintenance: int


class UserCounts(BaseModel):
    total: int
    actifs: int


class DashboardStats(BaseModel):
    interventions: InterventionCounts
    taux_resolution: float = Field(description="terminees ÷ (all − cancelled) × 100, one decimal; 0 without any.")
    evolution_mensuelle: list[MonthTotal] = Field(description="The last six months, oldest first.")
    priorites: PriorityCounts
    equipements: EquipementCounts
    utilisateurs: UserCounts


# --- /dashboard/kpis (docs/kpis.md) ------------------------------------------------------------------


class Periode(BaseModel):
    du: datetime
    au: datetime = Field(description="Excluded.")


class Backlog(BaseModel):
    total: int
    par_statut: dict[str, int] = Field(description="Each open statut: ouverte, affectee, en_cours, en_attente.")
    par_priorite: dict[str, int] = Field(description="Each priorite.")


class TypeRepairTime(BaseModel):
    minutes: float | None
    cloturees: int


class Mttr(BaseModel):
    definition: str
    minutes: float | None = Field(description="Null when nothing was closed in the period.")
    par_type: dict[str, TypeRepairTime] = Field(description="Each intervention type.")


class ResolutionTime(BaseModel):
    definition: str
    minutes: float | None = Field(description="Null when nothing was closed in the period.")
    par_type: dict[str, float | None] = Field(description="Each intervention type: minutes, or null.")


class SlaEntry(BaseModel):
    cloturees: int = Field(description="Closed in the period with a date_limite.")
    dans_les_delais: int = Field(description="Of those, closed by their date_limite.")
    taux: float | None = Field(description="Percent, one decimal; null without any.")


class Sla(BaseModel):
    definition: str
    taux: float | None
    par_priorite: dict[str, SlaEntry] = Field(description="Each priorite but `programmee` (no SLA).")


class DashboardKpis(BaseModel):
    periode: Periode
    backlog: Backlog
    en_retard: int = Field(description="Open interventions whose date_limite has passed.")
    creees: int = Field(description="Created in the period.")
    cloturees: int = Field(description="Closed in the period.")
    mttr: Mttr
    delai_resolution: ResolutionTime
    sla: Sla
    cout_pieces_total: int = Field(
        description="Centimes (MAD): the parts cost (`cout_pieces`, from inventory) of the interventions closed "
        "in the period, summed; 0 without any."
    )
