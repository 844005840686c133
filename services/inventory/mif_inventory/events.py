"""Events the inventory service publishes (docs/inventory.md; catalogue: docs/events/catalogue.md).

A part's events carry its full snapshot with `version`, so a consumer can upsert a replica from any of
them and drop an older one. Quantities are numbers in the part's `unite`; amounts are integer centimes
of MAD.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, Field

from mif_common.events import EventPayload


class PieceEvent(EventPayload):
    piece_id: int
    reference: str
    nom: str
    categorie: str | None = None
    unite: str
    prix_unitaire: int
    stock_minimum: float
    stock_maximum: float | None = None
    version: int
    updated_at: datetime


class PieceCreated(PieceEvent):
    event_type: ClassVar[str] = "inventory.piece.created.v1"


class PieceUpdated(PieceEvent):
    event_type: ClassVar[str] = "inventory.piece.updated.v1"
    changed: list[str] = Field(default_factory=list)


class PieceDeleted(PieceEvent):
    """Removed from the catalogue (its movements and the costs of past interventions stay)."""

    event_type: ClassVar[str] = "inventory.piece.deleted.v1"


class StockMoved(EventPayload):
    """One movement of a location's on-hand stock (a transfer is two: one per location)."""

    event_type: ClassVar[str] = "inventory.stock.moved.v1"
    mouvement_id: int
    piece_id: int
    emplacement_id: int
    type: str
    quantite: float  # signed: what the location's on-hand stock changed by
    avant: float
    apres: float
    emplacement_lie_id: int | None = None
    intervention_id: int | None = None
    prix_unitaire: int
    user_id: int | None = None
    motif: str | None = None
    # The part's available stock over every location after the movement.
    disponible_total: float
    occurred_at: datetime


class StockLow(EventPayload):
    """The part's available stock (on hand − reserved, over every location) fell to or below its
    `stock_minimum`: once per crossing, not again until it has gone back above."""

    event_type: ClassVar[str] = "inventory.stock.low.v1"
    piece_id: int
    reference: str
    nom: str
    unite: str
    disponible: float
    stock_minimum: float
    stock_maximum: float | None = None
    # What brings it back to `stock_maximum` (to `stock_minimum` when the part has no maximum).
    a_commander: float
    occurred_at: datetime


class LigneCout(BaseModel):
    piece_id: int
    reference: str
    nom: str
    unite: str
    quantite: float  # consumed, net of returns
    cout: int


class InterventionPartsCosted(EventPayload):
    """The parts cost of an intervention changed (a consumption or a return): consumed quantity × unit
    price at the time of consumption, net of returns. `version` grows by one at each change: a consumer
    keeps the highest."""

    event_type: ClassVar[str] = "inventory.intervention.parts_costed.v1"
    intervention_id: int
    cout_pieces: int
    lignes: list[LigneCout]
    version: int
    actor_id: int | None = None
    occurred_at: datetime


ALL_EVENTS = (PieceCreated, PieceUpdated, PieceDeleted, StockMoved, StockLow, InterventionPartsCosted)
