"""`make demo`'s spare parts phase, through the inventory service's API behind the gateway: the catalogue
(`demo_parts`), the storage locations (the central store in Casablanca, two site stores, the vans of the
first three demo technicians: `technicien_id` is planning's id), deliveries (`entree`) bringing stock in,
van loads (`transfert` from the central store), a few parts delivered at or below their minimum (to
reorder: `GET /api/v1/pieces/a-commander`, and a low-stock alert each), and parts reserved and consumed on
some open demo interventions (affectee: reserved; en_cours, en_attente: consumed, so that their parts cost
is not zero).

Idempotent like the rest of the demo: `survey` lists what exists and `what_is_missing` keeps only what is
not there: a part by its reference, a location by its code, a delivery or a van load by its stock row
(part, location), an intervention's parts by its lines. Every movement also carries an Idempotency-Key
(a retry within the inventory service's key lifetime moves nothing twice). When the gateway has no
inventory service behind it, the phase is skipped with a note.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from demo_catalog import _rng
from demo_parts import CENTRAL, LocationSpec, PartSpec, parts_plan, quantity_for

if TYPE_CHECKING:
    from demo import Actor, Run

OPEN_ASSIGNED = "affectee,en_cours,en_attente"
SITE_SHARE = 0.25  # of the parts also kept in each site store
VAN_CATEGORIES = frozenset(("Roulements", "Fusibles", "Appareillage", "Courroies", "Lubrifiants", "Consommables"))
VAN_SHARE = 0.2  # of the parts of those categories in each van


@dataclass(frozen=True)
class Delivery:
    part: PartSpec
    location: LocationSpec
    quantite: Decimal
    source: str | None = None  # a van load: the code of the store it comes from (a transfert)


@dataclass
class Survey:
    """What inventory holds now, keyed by the demo's natural keys."""

    pieces: dict[str, dict[str, Any]]  # reference (lower case) -> part
    locations: dict[str, dict[str, Any]]  # code (lower case) -> location
    stock: dict[tuple[int, int], dict[str, Any]]  # (piece_id, emplacement_id) -> stock row
    targets: list[dict[str, Any]]  # the open demo interventions that get parts
    with_parts: set[int] = field(default_factory=set)  # of those, the ones that have parts already


@dataclass(frozen=True)
class PartsMissing:
    parts: list[PartSpec]
    locations: list[LocationSpec]
    deliveries: list[Delivery]
    interventions: list[dict[str, Any]]

    @property
    def nothing(self) -> bool:
        return not (self.parts or self.locations or self.deliveries or self.interventions)


# --- the plan --------------------------------------------------------------------------------------


def plan_of(run: Run) -> tuple[list[PartSpec], list[LocationSpec]]:
    return parts_plan(run.plan.seed, run.plan.counts.pieces, len(run.plan.technicians))


def deliveries(seed: int, parts: list[PartSpec], locations: list[LocationSpec]) -> list[Delivery]:
    """Every part to the central store (to its maximum; a low one to half its minimum, at least 1), some
    to each site store (their minimum), and small stocks of everyday parts into each van."""
    central = next(loc for loc in locations if loc.code == CENTRAL)
    out = []
    for part in parts:
        if part.low:
            out.append(Delivery(part, central, Decimal(max(1, part.stock_minimum // 2))))
            continue
        out.append(Delivery(part, central, Decimal(part.stock_maximum)))
        for loc in locations:
            rng = _rng(seed, "stock", part.reference, loc.code)
            if loc.type == "magasin_site" and rng.random() < SITE_SHARE:
                out.append(Delivery(part, loc, Decimal(part.stock_minimum)))
            elif loc.type == "vehicule" and part.categorie in VAN_CATEGORIES and rng.random() < VAN_SHARE:
                out.append(Delivery(part, loc, Decimal(max(1, part.stock_minimum // 2)), source=CENTRAL))
    return out


def target_count(interventions: int) -> int:
    """How many open interventions get parts: about one in ten of the assigned ones, 3 to 40."""
    return max(3, min(40, interventions // 75))


# --- what is there ---------------------------------------------------------------------------------


async def reachable(run: Run) -> str | None:
    """None when inventory answers through the gateway; else why not (the phase is then skipped)."""
    path = "/api/v1/stock/emplacements"
    response = await run.api.send("GET", path, params={"limit": 1}, headers=run.admin.headers)
    if response.status_code == 200:
        return None
    return f"GET {path} answered {response.status_code}"


async def survey(run: Run) -> Survey:
    api, admin = run.api, run.admin
    pieces, locations, stock = await asyncio.gather(
        api.all_pages(admin, "/api/v1/pieces"),
        api.all_pages(admin, "/api/v1/stock/emplacements"),
        api.all_pages(admin, "/api/v1/stock"),
    )
    clients = [run.client_id(c.nom_entreprise) for c in run.plan.clients if c.nom_entreprise in run.clients]
    open_lists = await asyncio.gather(
        *(api.all_pages(admin, "/api/v1/interventions", {"client_id": c, "statut": OPEN_ASSIGNED}) for c in clients)
    )
    open_work = sorted((i for page in open_lists for i in page if i.get("technicien_id")), key=lambda i: i["id"])
    targets = open_work[: target_count(run.plan.counts.interventions)]
    views = await asyncio.gather(
        *(api.json(admin, "GET", f"/api/v1/stock/interventions/{t['id']}/pieces") for t in targets)
    )
    return Survey(
        pieces={p["reference"].lower(): p for p in pieces},
        locations={e["code"].lower(): e for e in locations},
        stock={(s["piece_id"], s["emplacement_id"]): s for s in stock},
        targets=targets,
        with_parts={v["intervention_id"] for v in views if v["lignes"]},
    )


def what_is_missing(run: Run, seen: Survey) -> PartsMissing:
    parts, locations = plan_of(run)

    def stocked(d: Delivery) -> bool:
        piece, loc = seen.pieces.get(d.part.reference.lower()), seen.locations.get(d.location.code.lower())
        return piece is not None and loc is not None and (piece["id"], loc["id"]) in seen.stock

    return PartsMissing(
        parts=[p for p in parts if p.reference.lower() not in seen.pieces],
        locations=[loc for loc in locations if loc.code.lower() not in seen.locations],
        deliveries=[d for d in deliveries(run.plan.seed, parts, locations) if not stocked(d)],
        interventions=[t for t in seen.targets if t["id"] not in seen.with_parts],
    )


# --- loading ---------------------------------------------------------------------------------------


async def load_parts(run: Run, seen: Survey) -> Survey:
    """Create what is missing; the survey of what is there afterwards."""
    missing = what_is_missing(run, seen)
    by_ref = {p.reference: i for i, p in enumerate(plan_of(run)[0])}

    async def part(spec: PartSpec) -> None:
        created = await run.api.json(run.manager(by_ref[spec.reference]), "POST", "/api/v1/pieces", json=spec.body())
        seen.pieces[spec.reference.lower()] = created
        run.created["parts"] += 1

    async def location(spec: LocationSpec) -> None:
        body: dict[str, Any] = {"code": spec.code, "nom": spec.nom, "type": spec.type, "adresse": spec.adresse}
        if spec.technician is not None:
            body["technicien_id"] = run.technicien_id(spec.technician)
        seen.locations[spec.code.lower()] = await run.api.json(
            run.admin, "POST", "/api/v1/stock/emplacements", json=body
        )
        run.created["stock locations"] += 1

    async def deliver(d: Delivery) -> None:
        piece, loc = seen.pieces[d.part.reference.lower()], seen.locations[d.location.code.lower()]
        body: dict[str, Any] = {"type": "entree", "piece_id": piece["id"], "emplacement_id": loc["id"]}
        body |= {"quantite": str(d.quantite), "motif": f"Réception fournisseur {d.part.fabricant}"}
        if d.source is not None:
            source = seen.locations[d.source.lower()]
            body |= {"type": "transfert", "emplacement_id": source["id"], "emplacement_destination_id": loc["id"]}
            body["motif"] = f"Dotation du {d.location.nom.lower()}"
        key = f"demo-{run.plan.seed}-{body['type']}-{d.part.reference}-{d.location.code}"
        # One account for every movement: Idempotency-Keys are per user.
        await run.api.call(run.admin, "POST", "/api/v1/stock/mouvements", json=body, headers={"Idempotency-Key": key})
        run.created["stock movements"] += 1

    await run.each("Parts", missing.parts, part)
    await run.each("Stock locations", missing.locations, location)
    # Deliveries first, van loads (transfers out of the central store) once the central store is stocked.
    await run.each("Deliveries", [d for d in missing.deliveries if d.source is None], deliver)
    await run.each("Van loads", [d for d in missing.deliveries if d.source is not None], deliver)
    # Again: the interventions may have been created by this run, and the stock is what parts come from.
    seen = await survey(run)
    todo = what_is_missing(run, seen).interventions
    if todo:
        await load_intervention_parts(run, seen, todo)
        seen = await survey(run)
    return seen


@dataclass(frozen=True)
class Use:
    """Parts of one intervention: reserve `quantite` of a part at a location, then maybe consume it."""

    piece_id: int
    emplacement_id: int
    quantite: Decimal
    consume: bool
    reference: str


def uses_for(
    run: Run, seen: Survey, intervention: dict[str, Any], available: dict[tuple[int, int], Decimal]
) -> list[Use]:
    """1 to 3 parts that fit the intervention's equipment, from the assigned technician's van when it holds
    them, else from the central store; consumed when the work has started. `available` is drawn down."""
    rng = _rng(run.plan.seed, "pieces-intervention", intervention["id"])
    types = {str(e.get("type", "")).lower() for e in run.equipment.values() if e["id"] == intervention["equipement_id"]}
    parts = [p for p in plan_of(run)[0] if not p.low and types & set(p.types_equipement)]
    vans = [v for v in seen.locations.values() if v.get("technicien_id") == intervention["technicien_id"]]
    central = seen.locations[CENTRAL.lower()]
    uses = []
    for spec in rng.sample(parts, k=min(len(parts), rng.randint(1, 3))):
        piece_id = seen.pieces[spec.reference.lower()]["id"]
        quantite = quantity_for(spec, rng)
        for place in [*vans, central]:
            key = (piece_id, place["id"])
            if available.get(key, Decimal(0)) >= quantite:
                available[key] -= quantite
                consume = intervention["statut"] != "affectee" and rng.random() < 0.85
                uses.append(Use(piece_id, place["id"], quantite, consume, spec.reference))
                break
    return uses


async def load_intervention_parts(run: Run, seen: Survey, interventions: list[dict[str, Any]]) -> None:
    available = {key: Decimal(str(row["disponible"])) for key, row in seen.stock.items()}
    # Drawn in the order of the ids, before any call: the same choices whatever the concurrency.
    plans = [(i, uses_for(run, seen, i, available)) for i in interventions]

    async def one(item: tuple[dict[str, Any], list[Use]]) -> None:
        intervention, uses = item
        iid = intervention["id"]
        actor = run.manager(iid)
        for use in uses:
            body = {"piece_id": use.piece_id, "emplacement_id": use.emplacement_id, "quantite": str(use.quantite)}
            for action in ("reservations", "consommations") if use.consume else ("reservations",):
                key = f"demo-{run.plan.seed}-{action}-{iid}-{use.reference}-{use.emplacement_id}"
                path = f"/api/v1/stock/interventions/{iid}/{action}"
                await until_open(run, actor, path, body, key)
                run.created[f"parts {action}"] += 1
        run.created["interventions with parts"] += 1

    await run.each("Parts on interventions", plans, one)


async def until_open(run: Run, actor: Actor, path: str, body: dict[str, Any], key: str) -> None:
    """POST, retried while inventory's replica still has the intervention in an earlier statut (it learns
    assignments and starts from interventions' events, a moment after they happen)."""
    from demo import ApiError, DemoError

    deadline = time.monotonic() + run.options.replica_timeout
    while True:
        try:
            await run.api.call(actor, "POST", path, json=body, headers={"Idempotency-Key": key}, expect=(200,))
            return
        except ApiError as exc:
            slug = str(exc.problem.get("type", "")) if isinstance(exc.problem, dict) else ""
            if exc.status != 409 or not slug.endswith("intervention-not-open-for-parts"):
                raise
            if time.monotonic() > deadline:
                raise DemoError(f"inventory still sees the intervention as closed to parts: {exc.describe()}") from exc
            await asyncio.sleep(0.5)


# --- summary ---------------------------------------------------------------------------------------


async def present(run: Run, seen: Survey) -> dict[str, int]:
    """The demo's parts as inventory has them now."""
    parts, locations = plan_of(run)
    reorder = await run.api.total(run.admin, "/api/v1/pieces/a-commander", {})
    return {
        "parts": sum(p.reference.lower() in seen.pieces for p in parts),
        "stock locations": sum(loc.code.lower() in seen.locations for loc in locations),
        "stock rows": len(seen.stock),
        "parts to reorder": reorder,
        "interventions with parts": len(seen.with_parts),
    }
