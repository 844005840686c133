"""Events the reports service publishes (docs/reports.md; catalogue: docs/events/catalogue.md).

An export job ended: notifications tells the requester (`rapport_pret`, `rapport_echoue`). The file's
signed link is not in the event (it expires; the job's page gives a fresh one): `chemin` is the job.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime

from mif_common.events import EventPayload


class ExportEvent(EventPayload):
    job_id: int
    user_id: int  # the requester, the only one told
    type: str  # interventions, equipements, pieces, plans, kpis, bon_intervention, rapport_mensuel
    format: str  # csv, xlsx, pdf
    chemin: str  # the job: /api/v1/rapports/jobs/{job_id}
    occurred_at: AwareDatetime


class ExportCompleted(ExportEvent):
    """The file is ready until `expire_le`."""

    event_type: ClassVar[str] = "reports.export.completed.v1"
    nom_fichier: str
    lignes: int
    taille: int  # bytes
    expire_le: AwareDatetime


class ExportFailed(ExportEvent):
    event_type: ClassVar[str] = "reports.export.failed.v1"
    erreur: str


ALL_EVENTS = (ExportCompleted, ExportFailed)
