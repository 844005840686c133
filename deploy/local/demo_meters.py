"""`make demo`'s meters phase (issue #17), through the assets and planning APIs behind the gateway.

On the demo's equipment: an `heures_marche` counter (h) on every rotating machine (compressors, pumps,
generators, conveyors, chillers, motors, cooling towers, presses), and `temperature` (°C) and `vibration`
(mm/s) gauges on a few of them (the most critical first). Each meter gets `DAYS` days of hourly readings,
posted in batches of at most 1,000 (`POST .../compteurs/{id}/releves`): running hours growing 8 to 16 h
a working day (a shift from 06:00 UTC), less on Saturdays, little on Sundays; a bearing temperature
following the day's ambient (21 °C ± 6) plus the machine's warming while it runs; a vibration level of
2 to 3 mm/s while running (a slow upward drift, a daily load cycle, noise), near zero when stopped. All
drawn from the seed: the same series on every run.

On the showcase machine (the first gauged one), planning gets a usage plan (every 500 heures_marche,
whose first crossing is placed after the readings, so the load generates no intervention: the plan
answers its `prochaine_date_estimee`, forecast from the readings' rate) and a threshold rule (vibration
> 7.1 mm/s for 10 minutes, priorite haute). The demo's vibration stays below `VIBRATION_CAP` (6 mm/s) by
construction, so the rule does not fire during the load: publishing higher values (MQTT, or a batch)
for 10 minutes opens a corrective intervention. Three checklist templates are created and attached to
the demo's calendar plans that have none (`PUT /planning/{id}` with `checklist_id`).

Idempotent: a meter is known by (equipment, code), a rule by its meter and kind, a template by its name;
a series is anchored at the meter's earliest stored reading, so an incomplete one (a run interrupted
between batches) gets the rest (stored readings come back as duplicates), a complete one nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from demo_catalog import EquipementSpec, _rng

if TYPE_CHECKING:
    from demo import Run

DAYS = 28
STEP = timedelta(hours=1)
READINGS = DAYS * 24  # per meter
BATCH = 1000  # the API's largest batch
SHIFT_START = 6  # UTC hour the machines start
USAGE_INTERVAL = 500.0  # heures_marche between two services of the usage plan
VIBRATION_LIMIT, VIBRATION_MINUTES, VIBRATION_CAP = 7.1, 10, 6.0
VIBRATION_NOTE = "Vibration au-delà de la zone C (ISO 10816-3) : arrêt et diagnostic"
ROTATING = frozenset(
    (
        "compresseur",
        "pompe",
        "groupe_electrogene",
        "convoyeur",
        "groupe_froid",
        "moteur",
        "tour_refroidissement",
        "presse",
    )
)
ELECTRICAL = frozenset(("moteur", "groupe_electrogene", "pont_roulant"))
CRITICITE_RANK = {"critique": 0, "important": 1, "standard": 2, "non_critique": 3}
METERS = {  # code -> (nom, nature, unite)
    "heures_marche": ("Heures de marche", "compteur", "h"),
    "temperature": ("Température palier", "jauge", "°C"),
    "vibration": ("Vibration palier (RMS)", "jauge", "mm/s"),
}


@dataclass(frozen=True)
class MeterSpec:
    equipement: EquipementSpec
    code: str

    def body(self) -> dict[str, str]:
        nom, nature, unite = METERS[self.code]
        return {"code": self.code, "nom": nom, "nature": nature, "unite": unite}


def _check(libelle: str) -> dict[str, Any]:
    return {"type": "verification", "libelle": libelle}


def _measure(libelle: str, unite: str, low: float, high: float, code: str | None = None) -> dict[str, Any]:
    return {"type": "mesure", "libelle": libelle, "unite": unite, "min": low, "max": high, "compteur_code": code}


CHECKLISTS: dict[str, dict[str, Any]] = {
    "Graissage roulements": {
        "description": "Graissage des paliers à roulements, machines tournantes (gamme GR).",
        "etapes": [
            _check("Machine consignée (cadenas posé, énergie nulle vérifiée)"),
            _check("Graisseurs nettoyés avant graissage"),
            _measure("Quantité de graisse injectée par palier", "g", 5, 60),
            _measure("Température palier après redémarrage", "°C", 10, 80, "temperature"),
            _check("Absence de fuite de graisse aux joints"),
            {"type": "texte", "libelle": "Observations (bruit, échauffement, graisse usagée)", "obligatoire": False},
            {"type": "photo", "libelle": "Photo des paliers après graissage"},
        ],
    },
    "Contrôle moteur électrique": {
        "description": "Contrôle périodique d'un moteur électrique et de son alimentation (gamme ME).",
        "etapes": [
            _check("Serrage des connexions du bornier vérifié"),
            _measure("Résistance d'isolement (500 V)", "MΩ", 100, 10000),
            _measure("Intensité absorbée en charge", "A", 0, 400),
            _measure("Température carcasse moteur", "°C", 10, 90, "temperature"),
            _measure("Vibration palier côté accouplement", "mm/s", 0, 4.5, "vibration"),
            _check("Ventilation dégagée, capot propre"),
            {"type": "texte", "libelle": "Observations", "obligatoire": False},
            {"type": "photo", "libelle": "Photo de la plaque à bornes"},
        ],
    },
    "Inspection générale": {
        "description": "Inspection visuelle et contrôles de sécurité d'un équipement statique (gamme IG).",
        "etapes": [
            _check("Organes de sécurité et arrêts d'urgence opérationnels"),
            _check("Absence de fuite, corrosion ou échauffement visible"),
            _measure("Température de l'armoire ou du local", "°C", 5, 45),
            {"type": "texte", "libelle": "Anomalies constatées", "obligatoire": False},
            {"type": "photo", "libelle": "Photo de l'équipement", "obligatoire": False},
        ],
    },
}


def checklist_for(family_key: str) -> str:
    if family_key in ELECTRICAL:
        return "Contrôle moteur électrique"
    return "Graissage roulements" if family_key in ROTATING else "Inspection générale"


# --- the plan --------------------------------------------------------------------------------------


def meter_plan(run: Run) -> tuple[list[MeterSpec], EquipementSpec | None]:
    """The demo's meters, and the showcase machine (the usage plan and the threshold rule's)."""
    rotating = [e for e in run.plan.equipment if e.family.key in ROTATING]
    ranked = sorted(rotating, key=lambda e: (CRITICITE_RANK.get(e.criticite, 9), e.index))
    gauged = {e.index for e in ranked[: max(2, min(12, len(rotating) // 4))]}
    meters = [MeterSpec(e, "heures_marche") for e in rotating]
    meters += [MeterSpec(e, code) for e in rotating if e.index in gauged for code in ("temperature", "vibration")]
    return meters, (ranked[0] if ranked else None)


def default_start(now: datetime) -> datetime:
    """Where a new series starts: `DAYS` days before the current hour (its last reading: an hour ago)."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS)


def _hours_on(seed: int, e: EquipementSpec, day: date) -> float:
    rng = _rng(seed, "marche", e.nom, day.isoformat())
    weekday = day.weekday()
    return rng.uniform(8, 16) if weekday < 5 else rng.uniform(2, 6) if weekday == 5 else rng.uniform(0, 3)


def _running(seed: int, e: EquipementSpec, hour: datetime, days: dict[date, float]) -> float:
    """The share of the hour starting at `hour` the machine ran."""
    day = hour.date()
    if day not in days:
        days[day] = _hours_on(seed, e, day)
    return min(1.0, max(0.0, days[day] - (hour.hour - SHIFT_START))) if hour.hour >= SHIFT_START else 0.0


def series(seed: int, meter: MeterSpec, start: datetime, *, showcase: bool) -> list[tuple[datetime, float]]:
    """The meter's `READINGS` hourly readings from `start`, deterministic from the seed and `start`."""
    e, days = meter.equipement, dict[date, float]()
    rng = _rng(seed, "serie", e.nom, meter.code, start.isoformat())
    times = [start + i * STEP for i in range(READINGS)]
    ran = [_running(seed, e, t - STEP, days) for t in times]  # the hour before each reading
    out: list[tuple[datetime, float]] = []
    if meter.code == "heures_marche":
        value = max(0, (start.date() - e.date_mise_en_service).days) * _rng(seed, "usage", e.nom).uniform(6.5, 9.5)
        if showcase:  # the next multiple of the interval stays ahead of the whole series (≤ 368 h of it)
            value = value // USAGE_INTERVAL * USAGE_INTERVAL + _rng(seed, "usage-offset", e.nom).uniform(40, 100)
        for t, share in zip(times, ran, strict=True):
            value += share
            out.append((t, round(value, 2)))
    elif meter.code == "temperature":
        warming, rise = rng.uniform(22, 34), 0.0
        for t, share in zip(times, ran, strict=True):
            rise += (warming * share - rise) * 0.45  # the housing's thermal lag
            ambient = 21 + 6 * math.sin(2 * math.pi * (t.hour - 9) / 24)
            out.append((t, round(ambient + rise + rng.gauss(0, 0.5), 1)))
    else:  # vibration
        base = rng.uniform(1.8, 3.0)
        for i, (t, share) in enumerate(zip(times, ran, strict=True)):
            if share < 0.5:
                level = rng.uniform(0.05, 0.3)
            else:
                cycle = 0.35 * math.sin(2 * math.pi * (t.hour - 11) / 24)
                level = base + 0.6 * i / READINGS + cycle + rng.gauss(0, 0.2)
            out.append((t, round(min(VIBRATION_CAP, max(0.05, level)), 2)))
    return out


# --- what is there ---------------------------------------------------------------------------------


@dataclass
class MetersSurvey:
    compteurs: dict[tuple[int, str], dict[str, Any]]  # (equipement_id, code) -> meter
    counts: dict[int, int]  # compteur id -> readings stored
    firsts: dict[int, datetime]  # compteur id -> its earliest reading
    plans: list[dict[str, Any]]  # every plan planning holds
    checklists: dict[str, dict[str, Any]]  # nom (lower case) -> template


@dataclass(frozen=True)
class MetersMissing:
    meters: list[MeterSpec]
    readings: list[MeterSpec]  # meters whose series is not (wholly) stored
    usage: bool
    threshold: bool
    checklists: list[str]
    attach: list[tuple[int, str]]  # (plan id, template nom)

    @property
    def nothing(self) -> bool:
        return not (self.meters or self.readings or self.usage or self.threshold or self.checklists or self.attach)


async def reachable(run: Run) -> str | None:
    """None when the meters and checklists answer through the gateway; else why not."""
    paths = ["/api/v1/planning/checklists"]
    if run.equipment:
        paths.append(f"/api/v1/equipements/{next(iter(run.equipment.values()))['id']}/compteurs")
    for path in paths:
        response = await run.api.send("GET", path, params={"limit": 1}, headers=run.admin.headers)
        if response.status_code != 200:
            return f"GET {path} answered {response.status_code}"
    return None


async def survey(run: Run) -> MetersSurvey:
    api, admin = run.api, run.admin
    meters, _ = meter_plan(run)
    ids = sorted({run.equipment[m.equipement.nom]["id"] for m in meters if m.equipement.nom in run.equipment})
    plans, checklists, *lists = await asyncio.gather(
        api.all_pages(admin, "/api/v1/planning"),
        api.all_pages(admin, "/api/v1/planning/checklists"),
        *(api.json(admin, "GET", f"/api/v1/equipements/{i}/compteurs") for i in ids),
    )
    compteurs = {(c["equipement_id"], c["code"]): c for page in lists for c in page}

    async def first(cid: int, eid: int) -> tuple[int, int, datetime | None]:
        path = f"/api/v1/equipements/{eid}/compteurs/{cid}/releves"
        response = await api.call(admin, "GET", path, params={"limit": 1})
        rows = response.json()
        when = datetime.fromisoformat(rows[0]["horodatage"]) if rows else None
        return cid, int(response.headers["x-total-count"]), when

    found = await asyncio.gather(*(first(c["id"], eid) for (eid, _), c in compteurs.items()))
    return MetersSurvey(
        compteurs=compteurs,
        counts={cid: n for cid, n, _ in found},
        firsts={cid: when for cid, _, when in found if when is not None},
        plans=plans,
        checklists={c["nom"].lower(): c for c in checklists},
    )


def _meter(run: Run, seen: MetersSurvey, e: EquipementSpec | None, code: str) -> dict[str, Any] | None:
    if e is None or e.nom not in run.equipment:
        return None
    return seen.compteurs.get((run.equipment[e.nom]["id"], code))


def _rule(run: Run, seen: MetersSurvey, e: EquipementSpec | None, code: str, kind: str) -> dict[str, Any] | None:
    meter = _meter(run, seen, e, code)
    rules = (p for p in seen.plans if meter and p.get("compteur_id") == meter["id"] and p.get("declencheur") == kind)
    return next(rules, None)


def _calendar_plans(run: Run, seen: MetersSurvey) -> list[tuple[dict[str, Any], EquipementSpec]]:
    """The demo's calendar plans (one per planned demo equipment), with their equipment."""
    by_id = {run.equipment[e.nom]["id"]: e for e in run.plan.equipment if e.nom in run.equipment}
    return [
        (p, by_id[p["equipement_id"]])
        for p in seen.plans
        if p["equipement_id"] in by_id and p.get("declencheur", "calendrier") == "calendrier"
    ]


def what_is_missing(run: Run, seen: MetersSurvey) -> MetersMissing:
    meters, showcase = meter_plan(run)

    def complete(m: MeterSpec) -> bool:
        found = _meter(run, seen, m.equipement, m.code)
        return found is not None and seen.counts.get(found["id"], 0) >= READINGS

    return MetersMissing(
        meters=[m for m in meters if _meter(run, seen, m.equipement, m.code) is None],
        readings=[m for m in meters if not complete(m)],
        usage=showcase is not None and _rule(run, seen, showcase, "heures_marche", "usage") is None,
        threshold=showcase is not None and _rule(run, seen, showcase, "vibration", "seuil") is None,
        checklists=[nom for nom in CHECKLISTS if nom.lower() not in seen.checklists],
        attach=[
            (p["id"], checklist_for(e.family.key)) for p, e in _calendar_plans(run, seen) if not p.get("checklist_id")
        ],
    )


# --- loading ---------------------------------------------------------------------------------------


async def load_meters(run: Run) -> MetersSurvey:
    """Create what is missing; the survey of what is there afterwards."""
    seen = await survey(run)
    missing = what_is_missing(run, seen)
    _, showcase = meter_plan(run)
    manager = run.manager(0)

    async def template(nom: str) -> None:
        body = {"nom": nom, **CHECKLISTS[nom]}
        seen.checklists[nom.lower()] = await run.api.json(manager, "POST", "/api/v1/planning/checklists", json=body)
        run.created["checklists"] += 1

    async def meter(m: MeterSpec) -> None:
        eid = run.equipment[m.equipement.nom]["id"]
        path = f"/api/v1/equipements/{eid}/compteurs"
        seen.compteurs[(eid, m.code)] = await run.api.json(manager, "POST", path, json=m.body())
        run.created["meters"] += 1

    await run.each("Checklist templates", missing.checklists, template)
    await run.each("Meters", missing.meters, meter)
    if missing.usage or missing.threshold:  # before the readings: a rule follows the readings after it
        assert showcase is not None
        await load_rules(run, seen, showcase, missing)

    async def batch(item: tuple[MeterSpec, list[tuple[datetime, float]]]) -> None:
        m, readings = item
        found = _meter(run, seen, m.equipement, m.code)
        assert found is not None
        path = f"/api/v1/equipements/{found['equipement_id']}/compteurs/{found['id']}/releves"
        body = {"source": "api", "releves": [{"horodatage": t.isoformat(), "valeur": v} for t, v in readings]}
        answer = await run.api.json(manager, "POST", path, json=body, expect=(201,))
        if answer["acceptes"]:
            run.created["readings"] += answer["acceptes"]

    batches = []
    now = datetime.now(UTC)
    for m in missing.readings:
        found = _meter(run, seen, m.equipement, m.code)
        assert found is not None
        start = seen.firsts.get(found["id"]) or default_start(now)
        points = series(run.plan.seed, m, start, showcase=m.equipement == showcase)
        batches += [(m, points[i : i + BATCH]) for i in range(0, len(points), BATCH)]
    await run.each("Meter readings", batches, batch)

    async def attach(item: tuple[int, str]) -> None:
        plan_id, nom = item
        body = {"checklist_id": seen.checklists[nom.lower()]["id"]}
        await run.api.call(manager, "PUT", f"/api/v1/planning/{plan_id}", json=body, expect=(200,))
        run.created["plans with a checklist"] += 1

    await run.each("Checklists on plans", missing.attach, attach)
    return await survey(run)


async def load_rules(run: Run, seen: MetersSurvey, showcase: EquipementSpec, missing: MetersMissing) -> None:
    """The usage plan and the threshold rule, once planning knows their meters (from assets' events)."""
    eid = run.equipment[showcase.nom]["id"]
    bodies = []
    if missing.usage:
        counter = _meter(run, seen, showcase, "heures_marche")
        assert counter is not None
        note = f"Vidange et graissage toutes les {USAGE_INTERVAL:.0f} heures de marche"
        body = {"declencheur": "usage", "compteur_id": counter["id"], "intervalle": USAGE_INTERVAL, "commentaire": note}
        bodies.append(("usage plans", {**body, "technicien_id": run.technicien_id(0)}))
    if missing.threshold:
        vibration = _meter(run, seen, showcase, "vibration")
        assert vibration is not None
        body = {"declencheur": "seuil", "compteur_id": vibration["id"], "operateur": ">", "seuil": VIBRATION_LIMIT}
        body |= {"duree_minutes": VIBRATION_MINUTES, "priorite": "haute", "commentaire": VIBRATION_NOTE}
        bodies.append(("threshold rules", body))
    for item, body in bodies:
        seen.plans.append(await post_rule(run, {"equipement_id": eid, **body}))
        run.created[item] += 1


async def post_rule(run: Run, body: dict[str, Any]) -> dict[str, Any]:
    """POST /planning, retried while planning does not know the meter yet (422 on `compteur_id`)."""
    from demo import ApiError, DemoError

    deadline = time.monotonic() + run.options.replica_timeout
    while True:
        try:
            return dict(await run.api.json(run.manager(0), "POST", "/api/v1/planning", json=body))
        except ApiError as exc:
            if exc.status != 422 or not exc.fields & {"compteur_id", "equipement_id"}:
                raise
            if time.monotonic() > deadline:
                raise DemoError(f"planning still does not know the meter: {exc.describe()}") from exc
            await asyncio.sleep(0.5)


# --- summary ---------------------------------------------------------------------------------------


async def present(run: Run, seen: MetersSurvey, *, wait: float) -> dict[str, Any]:
    """The demo's meters, rules and checklists as the services have them now; waits up to `wait` s for
    planning's forecast of the usage plan (it follows the readings' events)."""
    meters, showcase = meter_plan(run)
    stored = [found for m in meters if (found := _meter(run, seen, m.equipement, m.code)) is not None]
    plans = _calendar_plans(run, seen)
    out: dict[str, Any] = {
        "meters": len(stored),
        "counters": sum(c["nature"] == "compteur" for c in stored),
        "gauges": sum(c["nature"] == "jauge" for c in stored),
        "readings": sum(seen.counts.get(c["id"], 0) for c in stored),
        "usage plans": int(_rule(run, seen, showcase, "heures_marche", "usage") is not None),
        "threshold rules": int(_rule(run, seen, showcase, "vibration", "seuil") is not None),
        "checklists": sum(nom.lower() in seen.checklists for nom in CHECKLISTS),
        "plans with a checklist": sum(bool(p.get("checklist_id")) for p, _ in plans),
    }
    if showcase is None or showcase.nom not in run.equipment:
        return out
    usage = _rule(run, seen, showcase, "heures_marche", "usage")
    deadline = time.monotonic() + wait
    while usage is not None and usage["prochaine_date_estimee"] is None and time.monotonic() < deadline:
        await asyncio.sleep(1)
        usage = await run.api.json(run.admin, "GET", f"/api/v1/planning/{usage['id']}")
    threshold = _rule(run, seen, showcase, "vibration", "seuil")
    eid = run.equipment[showcase.nom]["id"]
    out["showcase"] = {
        "equipement_id": eid,
        "equipement": showcase.nom,
        "compteurs": {code: c["id"] for (i, code), c in seen.compteurs.items() if i == eid},
        "usage_plan_id": usage and usage["id"],
        **{k: usage and usage[k] for k in ("prochain_seuil", "usage_actuel", "prochaine_date_estimee")},
        "threshold_rule_id": threshold and threshold["id"],
    }
    return out


def describe(data: dict[str, Any]) -> list[str]:
    """Lines for the console about the showcase machine."""
    show = data.get("showcase")
    if not show:
        return []
    eid = show["equipement_id"]
    lines = [f"Meters showcase: {show['equipement']} (equipment {eid}), meters {', '.join(show['compteurs'])}."]
    if show["usage_plan_id"]:
        estimate = show["prochaine_date_estimee"] or "not forecast yet (planning is processing the readings)"
        lines.append(
            f"  usage plan {show['usage_plan_id']}: every {USAGE_INTERVAL:.0f} h, at {show['usage_actuel']} h now,"
            f" next service at {show['prochain_seuil']} h, estimated {estimate}"
        )
    if show["threshold_rule_id"]:
        lines.append(
            f"  threshold rule {show['threshold_rule_id']}: vibration > {VIBRATION_LIMIT} mm/s for"
            f" {VIBRATION_MINUTES} min (haute); the demo's readings stay below {VIBRATION_CAP}. To see it fire,"
            f" publish a higher value twice, {VIBRATION_MINUTES} minutes apart:"
            f" mosquitto_pub -h 127.0.0.1 -q 1 -t mif/equipements/{eid}/vibration -m 8.4"
        )
    return lines
