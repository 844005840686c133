"""Example `data` of the events reports publishes, checked against its payload models (for notifications'
consumer tests and the end-to-end tests)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mif_assets.testing import client_data, equipement_data
from mif_common.testing.events import example
from mif_interventions.testing import intervention_data
from mif_inventory.testing import parts_costed_data
from mif_planning.testing import technicien_data
from mif_reports.events import ExportCompleted, ExportFailed


def export_completed_data(job_id: int, user_id: int, **fields: Any) -> dict[str, Any]:
    at = datetime.now(UTC)
    return example(
        ExportCompleted,
        {
            "job_id": job_id,
            "user_id": user_id,
            "type": "interventions",
            "format": "xlsx",
            "chemin": f"/api/v1/rapports/jobs/{job_id}",
            "nom_fichier": "interventions-2026-12-04.xlsx",
            "lignes": 12_000,
            "taille": 480_000,
            "expire_le": at + timedelta(hours=24),
            "occurred_at": at,
        }
        | fields,
    )


def export_failed_data(job_id: int, user_id: int, **fields: Any) -> dict[str, Any]:
    return example(
        ExportFailed,
        {
            "job_id": job_id,
            "user_id": user_id,
            "type": "rapport_mensuel",
            "format": "pdf",
            "chemin": f"/api/v1/rapports/jobs/{job_id}",
            "erreur": "Le disque des exports est plein.",
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


# --- a small month whose every KPI was computed by hand (services/reports/tests/test_kpis.py) ---------------

CLIENT_A, CLIENT_B = 71, 72
TECH_1, TECH_2 = 501, 502
USER_1, USER_2 = 1003, 1004
E1, E2 = 11, 12


def t(day: int, hour: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


Event = tuple[str, dict[str, Any]]


def snapshots(
    intervention_id: int,
    *,
    equipement_id: int,
    client_id: int,
    technicien_id: int | None,
    type_: str,
    priorite: str,
    created: datetime,
    limite: datetime | None,
    started: datetime | None = None,
    closed: datetime | None = None,
    cancelled: datetime | None = None,
    duree: int | None = None,
) -> list[Event]:
    """The snapshot events of one intervention's life, each with the dates known at that moment."""
    common: dict[str, Any] = {
        "equipement_id": equipement_id,
        "client_id": client_id,
        "technicien_id": technicien_id,
        "type": type_,
        "priorite": priorite,
        "date_creation": created,
        "date_limite": limite,
    }
    first = "affectee" if technicien_id else "ouverte"
    events: list[Event] = [
        ("created", intervention_data(intervention_id, first, occurred_at=created, **common)),
    ]
    if started is not None:
        events.append(
            (
                "started",
                intervention_data(
                    intervention_id, "en_cours", occurred_at=started, date_debut_travaux=started, **common
                ),
            )
        )
    if closed is not None:
        events.append(
            (
                "closed",
                intervention_data(
                    intervention_id,
                    "cloturee",
                    occurred_at=closed,
                    date_debut_travaux=started,
                    date_cloture=closed,
                    duree_reelle=duree,
                    **common,
                ),
            )
        )
    if cancelled is not None:
        events.append(("cancelled", intervention_data(intervention_id, "annulee", occurred_at=cancelled, **common)))
    return [(f"interventions.intervention.{verb}.v1", data) for verb, data in events]


def month_of_november() -> list[Event]:
    events: list[Event] = [
        ("assets.client.created.v1", client_data(CLIENT_A, nom_entreprise="Cimenterie Atlas")),
        ("assets.client.created.v1", client_data(CLIENT_B, nom_entreprise="Laiterie du Nord")),
        (
            "assets.equipement.created.v1",
            equipement_data(
                E1, client_id=CLIENT_A, type="compresseur", localisation="Casablanca", updated_at=t(1, 0, 10)
            ),
        ),
        (
            "assets.equipement.created.v1",
            equipement_data(E2, client_id=CLIENT_B, type="pompe", localisation="Tanger", updated_at=t(1, 0, 10)),
        ),
        ("planning.technicien.created.v1", technicien_data(TECH_1, USER_1)),
        ("planning.technicien.created.v1", technicien_data(TECH_2, USER_2)),
    ]
    # E1 breaks down twice: 3 h on 2 November, 6 h on 10 November.
    for version, (statut, ancien, at) in enumerate(
        [
            ("panne", "operationnel", t(2, 8)),
            ("operationnel", "panne", t(2, 11)),
            ("panne", "operationnel", t(10, 8)),
            ("operationnel", "panne", t(10, 14)),
        ],
        start=2,
    ):
        events.append(
            (
                "assets.equipement.status_changed.v1",
                equipement_data(
                    E1,
                    statut=statut,
                    ancien_statut=ancien,
                    source="event",
                    version=version,
                    updated_at=at,
                    client_id=CLIENT_A,
                    type="compresseur",
                    localisation="Casablanca",
                ),
            )
        )
    a: dict[str, Any] = {"equipement_id": E1, "client_id": CLIENT_A}
    b: dict[str, Any] = {"equipement_id": E2, "client_id": CLIENT_B}
    events += snapshots(
        1, **a, technicien_id=TECH_1, type_="corrective", priorite="haute", created=t(2, 8), limite=t(3, 8),
        started=t(2, 9), closed=t(2, 11), duree=120,
    )  # fmt: skip
    events += snapshots(
        2, **a, technicien_id=TECH_1, type_="corrective", priorite="urgente", created=t(10, 8), limite=t(10, 12),
        started=t(10, 10), closed=t(10, 14), duree=240,
    )  # fmt: skip
    events += snapshots(
        3, **b, technicien_id=TECH_2, type_="preventive", priorite="normale", created=t(1, 8), limite=t(5, 17),
        started=t(5, 8), closed=t(5, 10), duree=120,
    )  # fmt: skip
    events += snapshots(
        4, **b, technicien_id=TECH_2, type_="preventive", priorite="normale", created=t(1, 8), limite=t(20, 17),
    )  # fmt: skip
    events += snapshots(
        5, **b, technicien_id=None, type_="corrective", priorite="basse", created=t(25, 8), limite=None,
    )  # fmt: skip
    events += snapshots(
        6, **a, technicien_id=TECH_1, type_="corrective", priorite="normale", created=t(15, 8), limite=None,
        cancelled=t(16, 8),
    )  # fmt: skip
    # Parts on intervention 1: 100 MAD consumed, then 20 MAD returned.
    events.append(("inventory.intervention.parts_costed.v1", parts_costed_data(1, cout_pieces=10_000, version=1)))
    events.append(("inventory.intervention.parts_costed.v1", parts_costed_data(1, cout_pieces=8_000, version=2)))
    return events
