"""Test helpers other suites reuse (inventory's own tests, interventions' and notifications' consumers,
the end-to-end tests, the benchmark): who is who in inventory's tests, and example `data` of the events
inventory publishes, checked against its payload models."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from mif_common.testing.events import Deliver as Deliver
from mif_common.testing.events import example
from mif_inventory.events import InterventionPartsCosted, StockLow

Headers = dict[str, str]
# A fixture that creates something through the API and answers its JSON.
Make = Callable[..., Awaitable[dict[str, Any]]]
ADMIN_ID, MANAGER_ID, TECH_USER_ID, OTHER_TECH_USER_ID = 1001, 1002, 1003, 1004
TECH_ID, OTHER_TECH_ID = 501, 502  # technician profile ids (planning), behind the two technician users
CLIENT_A, CLIENT_B = 71, 72


def parts_costed_data(
    intervention_id: int, *, cout_pieces: int = 12_345, version: int = 1, **fields: Any
) -> dict[str, Any]:
    """`data` of an `inventory.intervention.parts_costed.v1` event; `fields` set any other key."""
    return example(
        InterventionPartsCosted,
        {
            "intervention_id": intervention_id,
            "cout_pieces": cout_pieces,
            "lignes": [
                {
                    "piece_id": 1,
                    "reference": "ROUL-6204-2RS",
                    "nom": "Roulement à billes 6204 2RS",
                    "unite": "piece",
                    "quantite": 2.0,
                    "cout": cout_pieces,
                }
            ],
            "version": version,
            "actor_id": TECH_USER_ID,
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )


def stock_low_data(piece_id: int, **fields: Any) -> dict[str, Any]:
    """`data` of an `inventory.stock.low.v1` event; `fields` set any other key."""
    return example(
        StockLow,
        {
            "piece_id": piece_id,
            "reference": "FILT-HUILE-W712",
            "nom": "Filtre à huile W712/75",
            "unite": "piece",
            "disponible": 2.0,
            "stock_minimum": 3.0,
            "stock_maximum": 12.0,
            "a_commander": 10.0,
            "occurred_at": datetime.now(UTC),
        }
        | fields,
    )
