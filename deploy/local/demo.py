"""`make demo`: load a realistic demo data set into a running suite, through the gateway's public API.

Signs in as the admin (MIF_ADMIN_EMAIL / MIF_ADMIN_PASSWORD, as `make run`), then creates managers,
client organisations with their users, technicians with their competences, equipment, preventive plans,
and interventions walked through the real workflow (assign, start, pause, resume, close, cancel,
archive), each move made by someone allowed to make it: the managers, or the assigned technician with
their own token. Nothing touches a database directly.

Running it again is safe: every item has a stable natural key (username, organisation name, equipment
name, competence name; a technician's user; an equipment's plan), the loader lists what exists and
creates only what is missing, and interventions are topped up to the requested count. A complete data
set is reported as such and nothing is written.

    .venv/bin/python deploy/local/demo.py               # the default data set (~3000 interventions)
    .venv/bin/python deploy/local/demo.py --scale 0.05  # a small one
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TypeVar

import demo_inventory
import demo_meters
import httpx
from demo_catalog import COMPETENCES, MIF_DOMAIN, STATUTS, Counts, DemoPlan, Scenario, Step, build_plan, check_counts
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

DEFAULT_PASSWORD = "Demo-Mif-2026!"
# The gateway allows 1200 requests per user per minute (MIF_GATEWAY_RATE_USER_PER_WINDOW); stay under it
# so that no request is refused, rather than learning the limit from 429s.
REQUESTS_PER_MINUTE = 1100
USER_AGENT = "mif-demo-loader/1.0"
COUNTED = ("managers", "clients", "technicians", "equipment", "interventions", "pieces")
T = TypeVar("T")


# --- errors ----------------------------------------------------------------------------------------


class DemoError(Exception):
    """A failure the loader explains and stops on (exit status 1)."""


class ApiError(DemoError):
    """A call answered something the loader did not expect: method, path, status and problem detail."""

    def __init__(self, method: str, path: str, status: int, problem: Any) -> None:
        self.method, self.path, self.status, self.problem = method, path, status, problem
        super().__init__(self.describe())

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        try:
            problem: Any = response.json()
        except ValueError:
            problem = response.text[:500]
        request = response.request
        return cls(request.method, request.url.raw_path.decode(), response.status_code, problem)

    @property
    def fields(self) -> set[str]:
        """Fields the problem's `errors` name (which input was refused)."""
        errors = self.problem.get("errors") if isinstance(self.problem, dict) else None
        return {str(e.get("field")) for e in errors or () if isinstance(e, dict)}

    def describe(self) -> str:
        lines = [f"{self.method} {self.path} answered {self.status}"]
        if isinstance(self.problem, dict):
            lines[0] += f" ({self.problem.get('title', 'error')})"
            if detail := self.problem.get("detail"):
                lines.append(f"  {detail}")
            for error in self.problem.get("errors") or ():
                lines.append(f"  - {error.get('field', '?')}: {error.get('message', error)}")
        elif self.problem:
            lines.append(f"  {self.problem}")
        return "\n".join(lines)


def first_leaf(error: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups: the one worth showing."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


# --- HTTP ------------------------------------------------------------------------------------------


class Pacer:
    """A token bucket per account: at most `per_minute` requests a minute, bursts of `burst`."""

    def __init__(self, per_minute: float, burst: int = 20) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:  # waiters queue in order; only one sleeps at a time
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass
class Actor:
    """A signed-in account and its tokens."""

    username: str
    role: str
    user_id: int
    access_token: str
    refresh_token: str
    pacer: Pacer = field(default_factory=lambda: Pacer(REQUESTS_PER_MINUTE))

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Api:
    """The gateway, as the loader uses it: paced, retried where the gateway says so, errors explained."""

    def __init__(self, http: httpx.AsyncClient, *, login_wait_limit: float) -> None:
        self.http = http
        self.requests = 0
        self.logins = 0
        self.login_wait_limit = login_wait_limit

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise DemoError(
                f"Cannot reach the gateway at {self.http.base_url} ({exc}). Is the suite running (`make run`)?"
                " Another address: --gateway or MIF_GATEWAY_URL."
            ) from exc
        except httpx.TransportError as exc:
            raise DemoError(f"{method} {path}: no answer from the gateway ({exc!r}).") from exc
        self.requests += 1
        return response

    async def login(self, username: str, password: str, *, hint: str) -> Actor:
        """Sign in (the contract's form login), waiting out the gateway's sign-in limit if it is short."""
        while True:
            response = await self.send("POST", "/api/v1/auth/login", data={"username": username, "password": password})
            self.logins += 1
            if response.status_code != 429:
                break
            wait = retry_after(response)
            if wait > self.login_wait_limit:
                raise DemoError(
                    f"The gateway limits sign-ins from one address (30 per 5 minutes by default) and asks to wait "
                    f"{wait:.0f} s before signing in as {username}. Run `make demo` again in a few minutes."
                )
            await asyncio.sleep(wait)
        if response.status_code in (400, 401, 403):
            raise DemoError(f"Sign-in as {username} refused ({ApiError.of(response).describe()}).\n{hint}")
        if response.status_code != 200:
            raise ApiError.of(response)
        tokens = response.json()
        me = await self.send("GET", "/api/v1/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        if me.status_code != 200:
            raise ApiError.of(me)
        user = me.json()
        return Actor(username, user["role"], user["id"], tokens["access_token"], tokens["refresh_token"])

    async def refresh(self, actor: Actor) -> None:
        """A new access token (they last 15 minutes; a large data set may take longer to load)."""
        response = await self.send("POST", "/api/v1/auth/refresh", json={"refresh_token": actor.refresh_token})
        if response.status_code != 200:
            raise ApiError.of(response)
        tokens = response.json()
        actor.access_token, actor.refresh_token = tokens["access_token"], tokens["refresh_token"]

    async def call(
        self,
        actor: Actor,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200, 201),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request as `actor`; 429 and 503 are retried after the delay the answer gives, an expired
        token is refreshed once, anything else unexpected is an ApiError."""
        refreshed, attempts = False, 0
        while True:
            await actor.pacer.wait()
            response = await self.send(method, path, headers={**actor.headers, **(headers or {})}, **kwargs)
            if response.status_code in expect:
                return response
            if response.status_code in (429, 503) and attempts < 8:
                attempts += 1
                await asyncio.sleep(retry_after(response))
            elif response.status_code == 401 and not refreshed:
                await self.refresh(actor)
                refreshed = True
            else:
                raise ApiError.of(response)

    async def json(self, actor: Actor, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(actor, method, path, **kwargs)).json()

    async def all_pages(self, actor: Actor, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row of a list endpoint (bare array, `X-Total-Count`), 500 at a time."""
        rows: list[dict[str, Any]] = []
        while True:
            response = await self.call(actor, "GET", path, params={**(params or {}), "limit": 500, "offset": len(rows)})
            page = response.json()
            rows.extend(page)
            if not page or len(rows) >= int(response.headers.get("x-total-count", len(rows))):
                return rows

    async def total(self, actor: Actor, path: str, params: dict[str, Any]) -> int:
        response = await self.call(actor, "GET", path, params={**params, "limit": 1})
        return int(response.headers["x-total-count"])


def retry_after(response: httpx.Response) -> float:
    try:
        return max(0.2, min(float(response.headers.get("retry-after", "1")), 300.0))
    except ValueError:
        return 1.0


async def until_known(call: Callable[[], Awaitable[T]], *, what: str, patience: float) -> T:
    """Retry `call` while it is refused because interventions does not know `what` yet.

    interventions learns technicians only from planning's events (it has no read-through for them), so
    a technician is usable there a moment after planning created it. The call is the probe: it is
    refused (422) without side effects until the technician is known, then it succeeds.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return await call()
        except ApiError as exc:
            if exc.status != 422 or not exc.fields & {"technicien_id", "equipement_id"}:
                raise
            if time.monotonic() > deadline:
                raise DemoError(
                    f"interventions still does not know {what} after {patience:.0f} s of waiting: the events "
                    f"that announce it are not arriving (is RabbitMQ up, are the outbox relays running?).\n"
                    f"Last answer: {exc.describe()}"
                ) from exc
            await asyncio.sleep(0.25)


# --- options ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    gateway: str
    admin: str
    admin_password: str
    password: str
    counts: Counts
    seed: int
    concurrency: int
    replica_timeout: float
    settle_timeout: float
    login_wait_limit: float
    report: Path | None


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="demo.py",
        description="Load a realistic demo data set into a running MIF suite through its gateway (see `make run`).",
    )
    env = os.environ.get
    parser.add_argument("--gateway", default=env("MIF_GATEWAY_URL", "http://127.0.0.1:8000"), help="gateway URL")
    parser.add_argument("--admin", default=env("MIF_ADMIN_EMAIL", "admin@mif.ma"), help="admin e-mail or username")
    parser.add_argument("--admin-password", default=env("MIF_ADMIN_PASSWORD"), help="default: MIF_ADMIN_PASSWORD")
    parser.add_argument(
        "--password",
        default=env("MIF_DEMO_PASSWORD", DEFAULT_PASSWORD),
        help=f"password of every demo account (default: MIF_DEMO_PASSWORD or {DEFAULT_PASSWORD})",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default counts (e.g. 0.05)")
    defaults = Counts()
    for name in COUNTED:
        parser.add_argument(f"--{name}", type=int, help=f"{name} (default {getattr(defaults, name)} x scale)")
    parser.add_argument("--seed", type=int, default=2026, help="another seed draws another data set")
    parser.add_argument("--concurrency", type=int, default=12, help="requests in flight (default 12)")
    parser.add_argument("--replica-timeout", type=float, default=60.0, help="seconds to wait for events")
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="longest wait for the services to catch up (0: none)"
    )
    parser.add_argument("--login-wait-limit", type=float, default=90.0, help="longest wait for the sign-in limit")
    parser.add_argument("--report", type=Path, help="also write the summary as JSON to this file")
    args = parser.parse_args(argv)
    if not args.admin_password:
        parser.error("the admin's password is needed: set MIF_ADMIN_PASSWORD (as for `make run`) or --admin-password")
    if args.scale <= 0 or args.concurrency < 1:
        parser.error("--scale must be positive and --concurrency at least 1")
    counts = defaults.scaled(args.scale)
    overrides = {n: getattr(args, n) for n in COUNTED}
    counts = replace(counts, **{n: v for n, v in overrides.items() if v is not None})
    try:
        check_counts(counts)
    except ValueError as exc:
        parser.error(str(exc))
    return Options(
        gateway=args.gateway.rstrip("/"),
        admin=args.admin,
        admin_password=args.admin_password,
        password=args.password,
        counts=counts,
        seed=args.seed,
        concurrency=args.concurrency,
        replica_timeout=args.replica_timeout,
        settle_timeout=args.settle_timeout,
        login_wait_limit=args.login_wait_limit,
        report=args.report,
    )


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything the phases share: the API, the plan, who is signed in and the ids found or created."""

    api: Api
    plan: DemoPlan
    options: Options
    progress: Progress
    admin: Actor
    managers: list[Actor] = field(default_factory=list)
    technicians: list[Actor] = field(default_factory=list)  # same order as plan.technicians
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # username -> user
    competences: dict[str, int] = field(default_factory=dict)  # nom (lower case) -> id
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)  # nom_entreprise -> client
    profiles: dict[int, dict[str, Any]] = field(default_factory=dict)  # user id -> technician profile
    equipment: dict[str, dict[str, Any]] = field(default_factory=dict)  # nom -> equipment
    planned: set[int] = field(default_factory=set)  # equipment ids under a plan
    interventions: int = 0  # on the demo's organisations
    created: Counter[str] = field(default_factory=Counter)
    parts: dict[str, int] = field(default_factory=dict)  # the spare parts present (demo_inventory.present)
    parts_skipped: str | None = None  # why the spare parts phase did not run
    meters: dict[str, Any] = field(default_factory=dict)  # meters, rules, checklists present (demo_meters.present)
    meters_skipped: str | None = None  # why the meters phase did not run

    def manager(self, index: int) -> Actor:
        """Managers share the work in turn (the admin too: it may do all a manager does)."""
        rotation = [*self.managers, self.admin]
        return rotation[index % len(rotation)]

    def client_id(self, nom: str) -> int:
        return int(self.clients[nom]["id"])

    def technicien_id(self, index: int) -> int:
        user = self.users[self.plan.technicians[index].person.username]
        return int(self.profiles[user["id"]]["id"])

    async def each(self, label: str, items: Iterable[T], work: Callable[[T], Awaitable[None]]) -> None:
        """`work` on every item, `concurrency` at a time, under a progress bar; the first error stops all."""
        todo = list(items)
        if not todo:
            return
        task = self.progress.add_task(label, total=len(todo))
        queue = iter(todo)
        started = time.monotonic()

        async def worker() -> None:
            for item in queue:  # one shared iterator: each item is taken by exactly one worker
                await work(item)
                self.progress.advance(task)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.options.concurrency, len(todo))):
                    group.create_task(worker())
        except BaseExceptionGroup as errors:
            raise first_leaf(errors) from None
        if not self.progress.console.is_terminal:
            # Without a terminal the bars are drawn only at the end: say when each phase is done.
            self.progress.console.print(f"{label}: {len(todo)} in {time.monotonic() - started:.1f} s")


# --- inventory: what is there already --------------------------------------------------------------


async def take_inventory(run: Run) -> None:
    api, admin = run.api, run.admin
    users, competences, clients, profiles, equipment, plans = await asyncio.gather(
        api.all_pages(admin, "/api/v1/users"),
        api.all_pages(admin, "/api/v1/techniciens/competences"),
        api.all_pages(admin, "/api/v1/clients"),
        api.all_pages(admin, "/api/v1/techniciens"),
        api.all_pages(admin, "/api/v1/equipements"),
        api.all_pages(admin, "/api/v1/planning"),
    )
    run.users = {u["username"]: u for u in users}
    run.competences = {c["nom"].lower(): c["id"] for c in competences}
    run.clients = {c["nom_entreprise"]: c for c in clients}
    run.profiles = {p["user_id"]: p for p in profiles}
    run.equipment = {e["nom"]: e for e in equipment}
    # Calendar plans only: the meters phase's rules (usage, seuil) are not the demo's preventive plans.
    run.planned = {p["equipement_id"] for p in plans if p.get("declencheur", "calendrier") == "calendrier"}
    run.interventions = await count_interventions(run)


async def count_interventions(run: Run, **filters: Any) -> int:
    """Interventions on the demo's organisations (the filter takes one client at a time)."""
    ids = [run.client_id(c.nom_entreprise) for c in run.plan.clients if c.nom_entreprise in run.clients]
    totals = await asyncio.gather(
        *(run.api.total(run.admin, "/api/v1/interventions", {"client_id": i, **filters}) for i in ids)
    )
    return sum(totals)


@dataclass(frozen=True)
class Missing:
    managers: list[str]
    competences: list[str]
    clients: list[str]
    client_users: list[str]
    technician_users: list[str]
    profiles: list[int]  # technician indexes
    equipment: list[int]  # equipment indexes
    plans: list[int]  # plan indexes
    interventions: int

    @property
    def nothing(self) -> bool:
        lists = (self.managers, self.competences, self.clients, self.client_users, self.technician_users)
        return not any(lists) and not (self.profiles or self.equipment or self.plans or self.interventions)


def what_is_missing(run: Run) -> Missing:
    plan = run.plan
    needed_competences = sorted({nom for t in plan.technicians for nom, _ in t.competences})
    users = run.users
    return Missing(
        managers=[p.username for p in plan.managers if p.username not in users],
        competences=[n for n in needed_competences if n.lower() not in run.competences],
        clients=[c.nom_entreprise for c in plan.clients if c.nom_entreprise not in run.clients],
        client_users=[c.contact.username for c in plan.clients if c.contact.username not in users],
        technician_users=[t.person.username for t in plan.technicians if t.person.username not in users],
        profiles=[
            i
            for i, t in enumerate(plan.technicians)
            if t.person.username not in users or users[t.person.username]["id"] not in run.profiles
        ],
        equipment=[e.index for e in plan.equipment if e.nom not in run.equipment],
        plans=[
            i
            for i, p in enumerate(plan.plans)
            if p.equipement.nom not in run.equipment or run.equipment[p.equipement.nom]["id"] not in run.planned
        ],
        interventions=max(0, plan.counts.interventions - run.interventions),
    )


# --- phases ----------------------------------------------------------------------------------------


async def create_user(run: Run, item: str, username: str, full_name: str, email: str, role: str, **extra: Any) -> None:
    """An account (only an admin creates them), counted under `item` in the summary."""
    body = {
        "username": username,
        "full_name": full_name,
        "email": email,
        "role": role,
        "password": run.options.password,
    }
    run.users[username] = await run.api.json(run.admin, "POST", "/api/v1/users", json={**body, **extra})
    run.created[item] += 1


async def load_managers(run: Run, missing: Missing) -> None:
    people = {p.username: p for p in run.plan.managers}

    async def one(username: str) -> None:
        person = people[username]
        await create_user(run, "managers", username, person.full_name, f"{username}@{MIF_DOMAIN}", "responsable")

    await run.each("Managers", missing.managers, one)


async def sign_in(run: Run, usernames: list[str], label: str) -> list[Actor]:
    hint = (
        "Demo accounts use the password given by --password / MIF_DEMO_PASSWORD; "
        "if they were created with another one, pass that one."
    )
    actors: dict[str, Actor] = {}

    async def one(username: str) -> None:
        actors[username] = await run.api.login(username, run.options.password, hint=hint)

    await run.each(label, usernames, one)
    return [actors[u] for u in usernames]


async def load_competences(run: Run, missing: Missing) -> None:
    catalogue = {c.nom: c for c in COMPETENCES}

    async def one(nom: str) -> None:
        c = catalogue[nom]
        body = {"nom": c.nom, "domaine": c.domaine, "description": c.description}
        created = await run.api.json(run.manager(0), "POST", "/api/v1/techniciens/competences", json=body)
        run.competences[nom.lower()] = created["id"]
        run.created["competences"] += 1

    await run.each("Competences", missing.competences, one)


async def load_clients(run: Run, missing: Missing) -> None:
    specs = {c.nom_entreprise: c for c in run.plan.clients}

    async def one(nom: str) -> None:
        c = specs[nom]
        debut, fin = c.contrat(datetime.now(UTC).date())
        body = {
            "nom_entreprise": c.nom_entreprise,
            "type_client": c.type_client,
            "secteur_activite": c.secteur_activite,
            "nom_contact": c.contact.full_name,
            "email": c.user_email,
            "telephone": c.telephone,
            "adresse": c.adresse,
            "ville": c.ville,
            "niveau_service": c.niveau_service,
            "contrat_debut": debut.isoformat(),
            "contrat_fin": fin.isoformat(),
            "type_contrat": c.type_contrat,
        }
        run.clients[nom] = await run.api.json(run.manager(len(run.clients)), "POST", "/api/v1/clients", json=body)
        run.created["client organisations"] += 1

    await run.each("Client organisations", missing.clients, one)


async def load_client_users(run: Run, missing: Missing) -> None:
    by_username = {c.contact.username: c for c in run.plan.clients}

    async def one(username: str) -> None:
        c = by_username[username]
        client_id = run.client_id(c.nom_entreprise)
        await create_user(
            run, "client users", username, c.contact.full_name, c.user_email, "client", client_id=client_id
        )

    await run.each("Client users", missing.client_users, one)


async def load_technicians(run: Run, missing: Missing) -> None:
    specs = {t.person.username: t for t in run.plan.technicians}

    async def user(username: str) -> None:
        t = specs[username]
        await create_user(run, "technician accounts", username, t.person.full_name, t.email, "technicien")

    async def profile(index: int) -> None:
        t = run.plan.technicians[index]
        body = {
            "user_id": run.users[t.person.username]["id"],
            "equipe": t.equipe,
            "zone": t.zone,
            "competences": [{"id": run.competences[nom.lower()], "niveau": niveau} for nom, niveau in t.competences],
        }
        created = await run.api.json(run.manager(index), "POST", "/api/v1/techniciens", json=body)
        run.profiles[created["user_id"]] = created
        run.created["technicians"] += 1

    await run.each("Technician users", missing.technician_users, user)
    await run.each("Technician profiles", missing.profiles, profile)


async def load_equipment(run: Run, missing: Missing) -> None:
    async def one(index: int) -> None:
        e = run.plan.equipment[index]
        body = e.body(run.client_id(e.client.nom_entreprise))
        run.equipment[e.nom] = await run.api.json(run.manager(index), "POST", "/api/v1/equipements", json=body)
        run.created["equipment"] += 1

    await run.each("Equipment", missing.equipment, one)


async def load_plans(run: Run, missing: Missing) -> None:
    today = datetime.combine(datetime.now(UTC).date(), clock_time(7, 0), tzinfo=UTC)

    async def one(index: int) -> None:
        p = run.plan.plans[index]
        body: dict[str, Any] = {
            "equipement_id": run.equipment[p.equipement.nom]["id"],
            "frequence": p.frequence,
            # Always ahead: a plan due at load time would add scheduler-made interventions to the count.
            "prochaine_date": (today + timedelta(days=p.days_ahead)).isoformat(),
            "statut": p.statut,
            "commentaire": p.commentaire,
        }
        if p.technician is not None:
            body["technicien_id"] = run.technicien_id(p.technician)
        created = await run.api.json(run.manager(index), "POST", "/api/v1/planning", json=body)
        run.planned.add(created["equipement_id"])
        run.created["preventive plans"] += 1

    await run.each("Preventive plans", missing.plans, one)


# --- interventions ---------------------------------------------------------------------------------


@dataclass
class Walk:
    """Where one intervention is on its way."""

    scenario: Scenario
    manager: Actor
    id: int | None = None
    technician: int | None = None  # index into the plan's technicians
    statut: str | None = None


async def load_interventions(run: Run, missing: Missing) -> None:
    start = run.interventions
    await run.each("Interventions", range(start, start + missing.interventions), lambda i: walk(run, i))


async def walk(run: Run, index: int) -> None:
    scenario = run.plan.scenario(index)
    state = Walk(scenario, run.manager(index))
    for step in scenario.steps:
        await take_step(run, state, step)
    if state.statut != scenario.statut:
        raise DemoError(f"Intervention {state.id} ended '{state.statut}', the demo expected '{scenario.statut}'.")
    run.created["interventions"] += 1
    run.created[f"interventions {scenario.statut}"] += 1


async def take_step(run: Run, state: Walk, step: Step) -> None:
    if step.action == "create":
        answer = await create_intervention(run, state, step)
    elif step.action == "commenter":
        actor = actor_of(run, state, step)
        path = f"/api/v1/interventions/{state.id}/commentaires"
        await run.api.call(actor, "POST", path, json=step.body, expect=(201,))
        run.created["comments"] += 1
        return
    elif step.action == "affecter":
        answer = await assign(run, state, step)
    else:
        path = f"/api/v1/interventions/{state.id}/{step.action}"
        answer = await run.api.json(actor_of(run, state, step), "POST", path, json=step.body or None)
    state.id, state.statut = answer["id"], answer["statut"]
    if step.action == "desaffecter":
        state.technician = None


def actor_of(run: Run, state: Walk, step: Step) -> Actor:
    if step.actor == "manager":
        return state.manager
    if state.technician is None:
        raise DemoError(f"Demo plan error: step {step.action} of intervention {state.id} has no technician to do it.")
    return run.technicians[state.technician]


async def create_intervention(run: Run, state: Walk, step: Step) -> dict[str, Any]:
    scenario = state.scenario
    body = {**scenario.creation, "equipement_id": run.equipment[scenario.equipement.nom]["id"]}
    if step.technician is not None:
        body["technicien_id"] = run.technicien_id(step.technician)
        state.technician = step.technician

    async def call() -> Any:
        # No Idempotency-Key needed: the only retries are of answers that were not processed (429, 503, 422).
        return await run.api.json(state.manager, "POST", "/api/v1/interventions", json=body)

    return await until_known(call, what=_who(run, step.technician), patience=run.options.replica_timeout)


async def assign(run: Run, state: Walk, step: Step) -> dict[str, Any]:
    assert step.technician is not None
    body = {**step.body, "technicien_id": run.technicien_id(step.technician)}
    path = f"/api/v1/interventions/{state.id}/affecter"

    async def call() -> Any:
        return await run.api.json(state.manager, "POST", path, json=body)

    answer: dict[str, Any] = await until_known(
        call, what=_who(run, step.technician), patience=run.options.replica_timeout
    )
    state.technician = step.technician
    return answer


def _who(run: Run, technician: int | None) -> str:
    if technician is None:
        return "the equipment"
    return f"technician {run.plan.technicians[technician].person.username} (id {run.technicien_id(technician)})"


# --- settling ------------------------------------------------------------------------------------

OPEN_ASSIGNED = "affectee,en_cours,en_attente"


async def settle(run: Run) -> bool:
    """Wait until the services have processed the events of the load, as far as the API can tell.

    Requests answer once interventions has committed; the other services follow its events at their own
    pace (on a small machine, minutes behind a full load). planning consumes every intervention event, so
    its view of each technician's workload matching interventions' own count is the sign that the
    events have been processed. False when `settle_timeout` passed first.
    """
    if run.options.settle_timeout <= 0 or not run.technicians:
        return True
    expected = await open_work(run)
    task = run.progress.add_task("Services catching up", total=None)
    deadline, agreed = time.monotonic() + run.options.settle_timeout, 0
    while time.monotonic() < deadline:
        behind = await workload_gap(run, expected)
        total = run.progress.tasks[task].total or behind or 1
        run.progress.update(task, total=total, completed=max(0, total - behind))
        agreed = agreed + 1 if behind == 0 else 0
        if agreed == 2:  # twice in a row: not a passing coincidence
            return True
        await asyncio.sleep(1)
    return False


async def open_work(run: Run) -> dict[int, int]:
    """Open interventions of each demo technician, according to interventions."""
    ids = [run.technicien_id(i) for i in range(len(run.plan.technicians))]
    params = [{"technicien_id": i, "statut": OPEN_ASSIGNED} for i in ids]
    totals = await asyncio.gather(*(run.api.total(run.admin, "/api/v1/interventions", p) for p in params))
    return dict(zip(ids, totals, strict=True))


async def workload_gap(run: Run, expected: dict[int, int]) -> int:
    """How far planning's `charge_travail` of the demo technicians is from `expected`."""
    profiles = await run.api.all_pages(run.admin, "/api/v1/techniciens")
    seen = {p["id"]: p["charge_travail"] for p in profiles}
    return sum(abs(seen.get(i, 0) - n) for i, n in expected.items())


# --- summary ---------------------------------------------------------------------------------------


async def statut_counts(run: Run) -> dict[str, int]:
    counts = await asyncio.gather(*(count_interventions(run, statut=s) for s in STATUTS))
    return dict(zip(STATUTS, counts, strict=True))


async def kpi_figures(run: Run) -> dict[str, Any] | None:
    """What the reports service makes of the load, over its default period (the last 12 months): the
    figures a manager opens first. None when it does not answer (a suite without it)."""
    try:
        mttr, sla, backlog, preventive = [
            await run.api.json(run.admin, "GET", f"/api/v1/kpis/{kpi}")
            for kpi in ("mttr", "sla", "backlog", "conformite-preventive")
        ]
    except (ApiError, httpx.HTTPError):
        return None
    return {
        "cloturees": mttr["valeur"]["cloturees"],
        "mttr_travaux_minutes": mttr["valeur"]["mttr_travaux_minutes"],
        "sla": sla["valeur"],
        "backlog": backlog["valeur"],
        "conformite_preventive": preventive["valeur"],
    }


def present_counts(run: Run) -> dict[str, int]:
    plan = run.plan
    mine = {e.nom for e in plan.equipment}
    demo_equipment_ids = {run.equipment[n]["id"] for n in mine if n in run.equipment}
    return {
        "managers": sum(p.username in run.users for p in plan.managers),
        "client organisations": sum(c.nom_entreprise in run.clients for c in plan.clients),
        "client users": sum(c.contact.username in run.users for c in plan.clients),
        "technicians": sum(
            t.person.username in run.users and run.users[t.person.username]["id"] in run.profiles
            for t in plan.technicians
        ),
        "equipment": len(demo_equipment_ids),
        "preventive plans": len(demo_equipment_ids & run.planned),
        "interventions": run.interventions,
    }


def report_data(
    run: Run, statuts: dict[str, int], timing: Timing, already: bool, kpis: dict[str, Any] | None
) -> dict[str, Any]:
    plan = run.plan
    return {
        "already_loaded": already,
        "elapsed_seconds": round(timing.elapsed, 1),
        "loaded_seconds": round(timing.loaded, 1),
        "settled": timing.settled,
        "requests": run.api.requests,
        "created": dict(run.created),
        "present": present_counts(run),
        "parts": run.parts or {"skipped": run.parts_skipped},
        "meters": run.meters or {"skipped": run.meters_skipped},
        "statuts": statuts,
        "kpis": kpis,
        "client_ids": [run.client_id(c.nom_entreprise) for c in plan.clients],
        "technicien_ids": [run.technicien_id(i) for i in range(len(plan.technicians))],
        "equipement_ids": [run.equipment[e.nom]["id"] for e in plan.equipment],
        "logins": {
            "responsable": [p.username for p in plan.managers],
            "technicien": [t.person.username for t in plan.technicians],
            "client": [c.contact.username for c in plan.clients],
        },
    }


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def print_summary(console: Console, run: Run, data: dict[str, Any]) -> None:
    table = Table(title="Demo data set", show_header=True)
    table.add_column("item")
    table.add_column("present", justify="right")
    table.add_column("created now", justify="right")
    for item, value in data["present"].items():
        table.add_row(item, str(value), str(run.created[item]))
    for item, value in run.parts.items():
        table.add_row(item, str(value), str(run.created[item]) if item in run.created else "")
    for item, value in run.meters.items():
        if isinstance(value, int):
            table.add_row(item, str(value), str(run.created[item]) if item in run.created else "")
    movements = sum(n for k, n in run.created.items() if k == "stock movements" or k.startswith("parts "))
    table.add_row("stock movements", "", str(movements))
    table.add_row("competences", "", str(run.created["competences"]))
    table.add_row("comments", "", str(run.created["comments"]))
    console.print(table)
    statuts = Table(title="Interventions by statut", show_header=True)
    for statut in STATUTS:
        statuts.add_column(statut, justify="right")
    statuts.add_row(*(str(data["statuts"][s]) for s in STATUTS))
    console.print(statuts)
    if kpis := data["kpis"]:
        percent = "{:.1%}".format
        console.print(
            f"Reports (last 12 months, /api/v1/kpis): {kpis['cloturees']} closed, MTTR (work) "
            f"{kpis['mttr_travaux_minutes']} min, SLA {percent(kpis['sla'] or 0)}, preventive compliance "
            f"{percent(kpis['conformite_preventive'] or 0)}, backlog {kpis['backlog']}."
        )
    for line in demo_meters.describe(run.meters):
        console.print(line, highlight=False)
    loaded = data["loaded_seconds"]
    rate = data["requests"] / loaded if loaded else 0
    answered = f"{data['requests']} requests answered in {duration(loaded)} ({rate:.0f}/s)"
    console.print(f"Done in {duration(data['elapsed_seconds'])}: {answered}.")
    if not data["already_loaded"] and data["settled"]:
        console.print("The services have caught up with the events of the load (workloads, equipment statuses, ...).")
    elif not data["settled"]:
        console.print(
            "[yellow]The services are still processing the events of the load (notifications, workloads, equipment"
            " statuses): they will catch up in a while.[/yellow]"
        )
    if run.api.logins > 10:
        console.print(
            f"This run signed in {run.api.logins} times; the gateway allows 30 sign-ins per 5 minutes from one"
            " address, so a login from this machine may have to wait a few minutes."
        )
    logins = data["logins"]
    console.print("\n[bold]Logins to try[/bold] (all with the same password):")
    console.print(f"  managers (responsable): {', '.join(logins['responsable'])}")
    console.print(f"  technicians:            {', '.join(logins['technicien'])}")
    for c in run.plan.clients:
        console.print(f"  client {c.nom_entreprise} ({c.ville}): {c.contact.username}")
    console.print(f"  password: {run.options.password}")


# --- main ------------------------------------------------------------------------------------------


@dataclass
class Timing:
    loaded: float  # seconds until the last request of the load was answered
    settled: bool = True  # whether the services caught up with the events before the timeout
    elapsed: float = 0.0  # the whole run


async def load(options: Options, console: Console) -> dict[str, Any]:
    started = time.monotonic()
    plan = build_plan(options.counts, options.seed)
    limits = httpx.Limits(max_connections=options.concurrency + 4, max_keepalive_connections=options.concurrency + 4)
    async with httpx.AsyncClient(
        base_url=options.gateway, timeout=60.0, limits=limits, headers={"User-Agent": USER_AGENT}
    ) as http:
        api = Api(http, login_wait_limit=options.login_wait_limit)
        admin = await api.login(
            options.admin,
            options.admin_password,
            hint="Check MIF_ADMIN_EMAIL / MIF_ADMIN_PASSWORD (or --admin, --admin-password): those `make run` used.",
        )
        if admin.role != "admin":
            raise DemoError(f"{options.admin} is a '{admin.role}', not an admin: creating accounts needs an admin.")
        columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            run = Run(api, plan, options, progress, admin)
            await take_inventory(run)
            missing = what_is_missing(run)
            parts = await survey_parts(run, console)
            meters = await survey_meters(run, console)
            already = (
                missing.nothing
                and (parts is None or demo_inventory.what_is_missing(run, parts).nothing)
                and (meters is None or demo_meters.what_is_missing(run, meters).nothing)
            )
            if already:
                progress.stop()
                console.print("[green]The demo data set is already loaded: nothing to create.[/green]")
                timing = Timing(loaded=time.monotonic() - started)
            else:
                if not missing.nothing:
                    await load_everything(run, missing, console)
                if parts is not None:
                    parts = await demo_inventory.load_parts(run, parts)
                if meters is not None:
                    meters = await demo_meters.load_meters(run)
                timing = Timing(loaded=time.monotonic() - started)
                timing.settled = await settle(run)
            if parts is not None:
                run.parts = await demo_inventory.present(run, parts)
            if meters is not None:
                wait = min(30.0, options.settle_timeout) if run.created["readings"] else 0.0
                run.meters = await demo_meters.present(run, meters, wait=wait)
        statuts = await statut_counts(run)
        run.interventions = sum(statuts.values())  # every intervention has one of the seven
        timing.elapsed = time.monotonic() - started
        data = report_data(run, statuts, timing, already, await kpi_figures(run))
    print_summary(console, run, data)
    return data


async def survey_parts(run: Run, console: Console) -> demo_inventory.Survey | None:
    """What the inventory service holds; None (and a note) when the gateway has no inventory behind it."""
    why = await demo_inventory.reachable(run)
    if why is None:
        return await demo_inventory.survey(run)
    run.parts_skipped = f"the inventory service does not answer through the gateway ({why})"
    console.print(f"[yellow]Spare parts skipped: {run.parts_skipped}.[/yellow]")
    return None


async def survey_meters(run: Run, console: Console) -> demo_meters.MetersSurvey | None:
    """Meters, rules and checklists there; None (and a note) when the services do not answer for them."""
    why = await demo_meters.reachable(run)
    if why is None:
        return await demo_meters.survey(run)
    run.meters_skipped = f"the meters or checklists do not answer through the gateway ({why})"
    console.print(f"[yellow]Meters skipped: {run.meters_skipped}.[/yellow]")
    return None


async def load_everything(run: Run, missing: Missing, console: Console) -> None:
    if run.interventions or run.clients.keys() & {c.nom_entreprise for c in run.plan.clients}:
        console.print("Part of the demo data set is there already: creating only what is missing.")
    await load_managers(run, missing)
    run.managers = await sign_in(run, [p.username for p in run.plan.managers], "Managers sign in")
    await load_competences(run, missing)
    await load_clients(run, missing)
    await load_client_users(run, missing)
    await load_technicians(run, missing)
    if not missing.interventions:
        await load_equipment(run, missing)
        await load_plans(run, missing)
        return
    # Technicians start, pause, resume and close their own work: each one signs in, meanwhile (signing in
    # costs a password verification each: argon2id) equipment and plans are created.
    usernames = [t.person.username for t in run.plan.technicians]
    signing_in = asyncio.create_task(sign_in(run, usernames, "Technicians sign in"))
    try:
        await load_equipment(run, missing)
        await load_plans(run, missing)
        run.technicians = await signing_in
    finally:
        signing_in.cancel()  # no-op once done; stops it when a phase failed
    await load_interventions(run, missing)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    console = Console()
    c = options.counts
    console.print(
        f"Loading the demo data set into {options.gateway}: {c.managers} managers, {c.clients} clients, "
        f"{c.technicians} technicians, {c.equipment} equipment, {c.interventions} interventions (seed {options.seed})."
    )
    try:
        data = asyncio.run(load(options, console))
    except DemoError as exc:
        console.print(f"[red]demo: {exc}[/red]", highlight=False)
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted. Run `make demo` again: it creates only what is missing.[/yellow]")
        return 130
    if options.report is not None:
        options.report.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    # The phases' modules import their errors from `demo` when they run: as a script this module is
    # `__main__`, and a second copy imported as `demo` would have other classes (its errors not caught here).
    sys.modules.setdefault("demo", sys.modules[__name__])
    sys.exit(main())
