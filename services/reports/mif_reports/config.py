"""Settings of the reports service (`MIF_REPORTS_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings
from mif_common.suite import REPO_ROOT


class ReportsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_REPORTS_", extra="ignore")
    service_name: ClassVar[str] = "reports"

    # Days are counted in the company's time zone (a KPI "per day" is a working day in Morocco).
    fuseau: str = "Africa/Casablanca"
    # First-time fix: a closed corrective is "fixed the first time" unless another corrective is opened on
    # the same equipment within this many days of its closure.
    premiere_resolution_jours: int = Field(default=30, ge=1, le=365)
    # Labour cost = worked minutes × this hourly rate (centimes of MAD per hour).
    taux_horaire: int = Field(default=25_000, ge=0)
    # Technician utilisation: minutes a technician is available per working day (Monday to Friday).
    minutes_disponibles_par_jour: int = Field(default=480, ge=1, le=24 * 60)

    # Exports: above this many rows a list becomes a job (streamed straight away below it).
    seuil_job_lignes: int = Field(default=5_000, ge=1)
    exports_dir: Path = REPO_ROOT / "var" / "reports"
    # A finished file can be fetched for this long through its signed link, then it is deleted.
    expiration_heures: float = Field(default=24.0, gt=0)
    url_secret: SecretStr | None = None
    job_poll_interval_seconds: float = Field(default=1.0, gt=0)
    expiry_interval_seconds: float = Field(default=300.0, gt=0)

    # Owners asked as the caller for what no event carries (a work order's history, report text,
    # checklist, documents; the plans list).
    interventions_url: str = "http://127.0.0.1:8003"
    planning_url: str = "http://127.0.0.1:8004"
    documents_url: str = "http://127.0.0.1:8005"
